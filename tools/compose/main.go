// Command compose-check loads Compose files the way `docker compose config` does, with the
// Compose Specification's own Go loader (github.com/compose-spec/compose-go/v2, which Docker
// Compose v2 is built on): interpolation from the environment and a .env file, the
// compose-spec JSON schema, normalization and the consistency checks (unknown services in
// depends_on, undeclared networks and volumes, ...). It prints the resulting model as JSON on
// stdout and exits 0, or prints the loader's error on stderr and exits 1.
//
// scripts/compose-checker builds it; tests/fixtures/compose_checker.py runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	var configFiles files
	flag.Var(&configFiles, "f", "Compose file (repeatable; default: compose.yaml / docker-compose.yml in the working directory)")
	workdir := flag.String("project-directory", "", "working directory of the project (default: the first file's directory)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "compose-check: unexpected arguments: %v\n", flag.Args())
		os.Exit(2)
	}

	options := []cli.ProjectOptionsFn{
		cli.WithOsEnv,
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
		cli.WithNormalization(true),
		cli.WithInterpolation(true),
	}
	if *workdir != "" {
		options = append(options, cli.WithWorkingDirectory(*workdir))
	}
	projectOptions, err := cli.NewProjectOptions(configFiles, options...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "compose-check: %v\n", err)
		os.Exit(1)
	}
	project, err := projectOptions.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "compose-check: %v\n", err)
		os.Exit(1)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fmt.Fprintf(os.Stderr, "compose-check: %v\n", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
	os.Stdout.Write([]byte("\n"))
}
