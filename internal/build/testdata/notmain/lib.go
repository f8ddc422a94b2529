// Package notmain is a library, not a function: it is not package main.
package notmain

// Greeting is what a function would answer.
const Greeting = "hello"
