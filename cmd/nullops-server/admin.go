package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/traefik/paerser/cli"

	"github.com/nullops/nullops/internal/confload"
	"github.com/nullops/nullops/internal/logging"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/store"
)

// adminConfig is the server configuration (same file, NULLOPS_* variables
// and flags) with a validation that lets the password come from stdin.
type adminConfig config.Config

// Validate checks the configuration like the server does, requiring
// admin.username and allowing admin.password to be empty (read from stdin).
func (c *adminConfig) Validate() error {
	if c.Admin.Username == "" {
		return errors.New("admin.username: required (--admin.username or NULLOPS_ADMIN_USERNAME)")
	}
	cp := config.Config(*c)
	if cp.Admin.Password == "" {
		cp.Admin.Password = strings.Repeat("x", auth.MinPasswordLen)
	}
	return cp.Validate()
}

// adminCommand is `nullops-server admin create`: it adds an administrator to
// the database the server uses, e.g. when the bootstrap admin is gone.
func adminCommand() *cli.Command {
	admin := &cli.Command{
		Name:        "admin",
		Description: "Manage administrator accounts.",
	}
	cfg := (*adminConfig)(config.Defaults())
	create := confload.Command("create",
		"Create an administrator: --admin.username=NAME; the password comes from NULLOPS_ADMIN_PASSWORD, --admin.password, or the first line of stdin.",
		cfg, nil, func(_ []string) error { return adminCreate((*config.Config)(cfg), os.Stdin, os.Stdout) })
	_ = admin.AddCommand(create)
	return admin
}

func adminCreate(cfg *config.Config, stdin io.Reader, stdout io.Writer) error {
	password := cfg.Admin.Password
	if password == "" {
		fmt.Fprintf(stdout, "password for %s: ", cfg.Admin.Username)
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && (!errors.Is(err, io.EOF) || line == "") {
			return fmt.Errorf("read the password from stdin: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
		fmt.Fprintln(stdout)
	}
	username := auth.NormalizeUsername(cfg.Admin.Username)
	log := logging.New(cfg.Log, os.Stderr, "server")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := store.Migrate(ctx, cfg.Database.URL); err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	st, err := store.Open(ctx, cfg.Database.URL, 2)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer st.Close()
	svc, err := auth.New(st, log, auth.Options{})
	if err != nil {
		return err
	}
	u, err := svc.CreateUser(ctx, store.Actor{Name: "cli"}, auth.NewUser{Username: username, Password: password, Role: store.RoleAdmin,
		Via: "nullops-server admin create"})
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("admin.username: %q is taken", username)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created administrator %s (id %d)\n", u.Username, u.ID)
	return nil
}
