// Package migrations embeds the PostgreSQL schema migrations of nullops-server.
// Released migrations are never edited; changes come as new numbered files.
package migrations

import "embed"

// FS holds the *.up.sql and *.down.sql files.
//
//go:embed *.sql
var FS embed.FS
