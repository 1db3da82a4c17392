// Command postgres is a NullOps plugin that prepares a PostgreSQL database
// for a deployment: it creates (or updates) a login role and a database
// owned by it, then runs an optional SQL script in that database as that
// role. Running it twice is harmless.
//
// Params:
//
//	host            server host: usually the node id of the database service (required)
//	port            default 5432
//	admin_user      default postgres
//	admin_password  e.g. "${secrets.pg_admin_password}"
//	admin_database  default postgres
//	database        database to create (required)
//	role            role to create (default: database)
//	password        role password (default: generated)
//	sql             SQL script run in the new database as the role
//	sslmode         default disable
//	timeout         how long to wait for the server to accept connections (default 60s)
//
// Outputs: url, host, port, database, user, password.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nullops/nullops/plugins/sdk"
)

func main() {
	sdk.Run(func(in *sdk.Input) (sdk.Output, error) { return run(context.Background(), in) })
}

type params struct {
	host, port, adminUser, adminPassword, adminDB, database, role, password, sql, sslmode string
	timeout                                                                               time.Duration
}

func parse(in *sdk.Input) (params, error) {
	req, err := in.Required("host", "database")
	if err != nil {
		return params{}, err
	}
	p := params{
		host: req["host"], port: in.ParamDefault("port", "5432"),
		adminUser: in.ParamDefault("admin_user", "postgres"), adminPassword: in.Param("admin_password"),
		adminDB: in.ParamDefault("admin_database", "postgres"), database: req["database"],
		role: in.ParamDefault("role", req["database"]), password: in.Param("password"),
		sql: in.Param("sql"), sslmode: in.ParamDefault("sslmode", "disable"),
	}
	if p.timeout, err = in.DurationParam("timeout", 60*time.Second); err != nil {
		return p, err
	}
	if _, err := strconv.Atoi(p.port); err != nil {
		return p, fmt.Errorf("port %q is not a number", p.port)
	}
	if p.password == "" {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return p, err
		}
		p.password = hex.EncodeToString(b)
	}
	return p, nil
}

func dsn(user, password, host, port, db, sslmode string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: net.JoinHostPort(host, port), Path: "/" + db}
	u.RawQuery = "sslmode=" + url.QueryEscape(sslmode)
	return u.String()
}

// connect retries until the server accepts connections or timeout passes
// (the database service may still be starting).
func connect(ctx context.Context, connURL string, timeout time.Duration) (*pgx.Conn, error) {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.Connect(cctx, connURL)
		cancel()
		if err == nil {
			return conn, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("connect: %w", err)
		}
		sdk.Logf("waiting for PostgreSQL: %v", err)
		time.Sleep(time.Second)
	}
}

func run(ctx context.Context, in *sdk.Input) (sdk.Output, error) {
	p, err := parse(in)
	if err != nil {
		return sdk.Output{}, err
	}
	admin, err := connect(ctx, dsn(p.adminUser, p.adminPassword, p.host, p.port, p.adminDB, p.sslmode), p.timeout)
	if err != nil {
		return sdk.Output{}, err
	}
	defer admin.Close(ctx)
	role, db := pgx.Identifier{p.role}.Sanitize(), pgx.Identifier{p.database}.Sanitize()
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", p.role).Scan(&exists); err != nil {
		return sdk.Output{}, fmt.Errorf("look up role: %w", err)
	}
	// Passwords cannot be bind parameters in CREATE/ALTER ROLE: quote it.
	pw := "'" + strings.ReplaceAll(p.password, "'", "''") + "'"
	if exists {
		_, err = admin.Exec(ctx, "ALTER ROLE "+role+" WITH LOGIN PASSWORD "+pw)
	} else {
		_, err = admin.Exec(ctx, "CREATE ROLE "+role+" WITH LOGIN PASSWORD "+pw)
		sdk.Logf("created role %s", p.role)
	}
	if err != nil {
		return sdk.Output{}, fmt.Errorf("create role %s: %w", p.role, err)
	}
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", p.database).Scan(&exists); err != nil {
		return sdk.Output{}, fmt.Errorf("look up database: %w", err)
	}
	if !exists {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+db+" OWNER "+role); err != nil {
			return sdk.Output{}, fmt.Errorf("create database %s: %w", p.database, err)
		}
		sdk.Logf("created database %s owned by %s", p.database, p.role)
	} else if _, err := admin.Exec(ctx, "ALTER DATABASE "+db+" OWNER TO "+role); err != nil {
		return sdk.Output{}, fmt.Errorf("set owner of %s: %w", p.database, err)
	}
	appURL := dsn(p.role, p.password, p.host, p.port, p.database, p.sslmode)
	if strings.TrimSpace(p.sql) != "" {
		conn, err := connect(ctx, appURL, 10*time.Second)
		if err != nil {
			return sdk.Output{}, fmt.Errorf("as %s: %w", p.role, err)
		}
		defer conn.Close(ctx)
		// No arguments: the simple protocol runs a multi-statement script.
		if _, err := conn.Exec(ctx, p.sql); err != nil {
			return sdk.Output{}, fmt.Errorf("sql script: %w", err)
		}
		sdk.Logf("ran SQL script (%d bytes)", len(p.sql))
	}
	return sdk.Output{
		Outputs: map[string]string{
			"url": appURL, "host": p.host, "port": p.port, "database": p.database, "user": p.role, "password": p.password,
		},
		Message: fmt.Sprintf("database %s ready for role %s", p.database, p.role),
	}, nil
}
