//go:build !unix

package envelope

const noFollow = 0
