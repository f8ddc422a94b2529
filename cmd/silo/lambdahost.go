package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/platform"
	siloaws "github.com/silo-run/silo/provider/aws"
)

// lambdaMachines are the Lambda architectures silo deploys to and the ELF
// machine of each.
var lambdaMachines = map[string]elf.Machine{"arm64": elf.EM_AARCH64, "x86_64": elf.EM_X86_64}

// goArch is the GOARCH that builds the host for a Lambda architecture.
var goArch = map[string]string{"arm64": "arm64", "x86_64": "amd64"}

// buildHint says how to build the silo Lambda host for arch.
func buildHint(arch string) string {
	return fmt.Sprintf("build it with GOOS=linux GOARCH=%s CGO_ENABLED=0 go build -tags lambda.norpc -ldflags='-s -w' -o silo-lambda ./cmd/silo-lambda", goArch[arch])
}

// lambdaHostPackage is the main package of the silo Lambda host, which Go
// records in the build information of every executable it builds.
const lambdaHostPackage = "github.com/silo-run/silo/cmd/silo-lambda"

// readLambdaHost reads the silo Lambda host at path and checks that it is
// an ELF executable for linux and arch, built by Go from
// lambdaHostPackage.
//
// # Errors
//
// CodeInvalid naming the file, what it is and what was expected.
func readLambdaHost(path, arch string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, silo.Errorf(silo.CodeInvalid, "--aws-lambda-host %s: no such file; %s", path, buildHint(arch))
	}
	if err != nil {
		return nil, silo.Errorf(silo.CodeInvalid, "--aws-lambda-host %s: cannot read it (%v); pass the path of the silo Lambda host", path, errors.Unwrap(err))
	}
	want := fmt.Sprintf("want the silo Lambda host, an ELF executable for linux/%s; %s", goArch[arch], buildHint(arch))
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, silo.Errorf(silo.CodeInvalid, "--aws-lambda-host %s is not an ELF executable: %s", path, want)
	}
	defer f.Close()
	switch {
	case f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN:
		return nil, silo.Errorf(silo.CodeInvalid, "--aws-lambda-host %s is an ELF file of type %s, not an executable: %s", path, f.Type, want)
	case f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX:
		return nil, silo.Errorf(silo.CodeInvalid, "--aws-lambda-host %s is built for %s, not linux: %s", path, f.OSABI, want)
	case f.Machine != lambdaMachines[arch]:
		return nil, silo.Errorf(silo.CodeInvalid, "--aws-lambda-host %s is built for %s, not %s (--aws-lambda-arch %s): %s", path, machineName(f.Machine), goArch[arch], arch, want)
	}
	if bi, err := buildinfo.Read(bytes.NewReader(b)); err != nil {
		return nil, silo.Errorf(silo.CodeInvalid, "--aws-lambda-host %s is not the silo Lambda host (it is no Go program): %s", path, want)
	} else if bi.Path != lambdaHostPackage {
		return nil, silo.Errorf(silo.CodeInvalid, "--aws-lambda-host %s is not the silo Lambda host (it is the Go program %s): %s", path, bi.Path, want)
	}
	return b, nil
}

// elfArch returns the Lambda architecture the host at path is built
// for, read from its ELF header: the setting --aws-lambda-arch need not
// repeat it. arm64, the cheaper Lambda architecture, for a file that is
// no ELF executable for either (readLambdaHost then says what is wrong).
func elfArch(path string) string {
	if f, err := elf.Open(path); err == nil {
		defer f.Close()
		for arch, m := range lambdaMachines {
			if f.Machine == m {
				return arch
			}
		}
	}
	return "arm64"
}

// machineName names an ELF machine as GOARCH does, where silo builds for it.
func machineName(m elf.Machine) string {
	for arch, em := range lambdaMachines {
		if em == m {
			return goArch[arch]
		}
	}
	return m.String()
}

// functionCode is where the AWS provider finds what it deploys to Lambda
// for the choice c of data dir dataDir: the host at c.LambdaHost (read
// again at each deploy, so a rebuilt host is picked up) and the data
// dir's built modules. Nil without a host: functions run in the server.
func functionCode(c awsChoice, dataDir string) *siloaws.FunctionCode {
	if c.LambdaHost == "" {
		return nil
	}
	return &siloaws.FunctionCode{
		Arch: c.LambdaArch,
		Host: func(ctx context.Context, arch string) ([]byte, error) { return readLambdaHost(c.LambdaHost, arch) },
		Artifact: func(ctx context.Context, digest string) ([]byte, error) {
			return platform.ReadArtifact(dataDir, digest)
		},
	}
}
