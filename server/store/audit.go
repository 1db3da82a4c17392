package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// AuditEntry is one audit log row. Detail is any JSON-marshalable value when
// recording (nil = {}); it never holds secret values. Listing returns it as
// json.RawMessage.
type AuditEntry struct {
	ID            int64     `json:"id"`
	ActorID       *int64    `json:"actor_id"`
	ActorName     string    `json:"actor"`
	Action        string    `json:"action"`
	TargetType    string    `json:"target_type"`
	TargetID      string    `json:"target_id"`
	ProjectID     *int64    `json:"project_id"`
	EnvironmentID *int64    `json:"environment_id"`
	ClientAddr    string    `json:"client_addr"`
	Detail        any       `json:"detail"`
	CreatedAt     time.Time `json:"created_at"`
}

// Actor is who performs an action: a user (UserID set), or the control
// plane itself (SystemActor). ClientAddr is the caller's address, if any.
type Actor struct {
	UserID     *int64
	Name       string
	ClientAddr string
}

// SystemActor is the actor of actions the control plane takes by itself.
var SystemActor = Actor{Name: "system"}

// UserActor is a user acting from addr.
func UserActor(id int64, name, addr string) Actor {
	return Actor{UserID: &id, Name: name, ClientAddr: addr}
}

// Entry is an audit entry of action on a target by a. targetID is
// formatted with fmt.Sprint (nil = ""); detail never holds secret values.
func (a Actor) Entry(action, targetType string, targetID, detail any) AuditEntry {
	e := AuditEntry{ActorID: a.UserID, ActorName: a.Name, ClientAddr: a.ClientAddr,
		Action: action, TargetType: targetType, Detail: detail}
	if targetID != nil {
		e.TargetID = fmt.Sprint(targetID)
	}
	return e
}

// Audit appends e to the audit log: inside the transaction of a Store
// given by InTx, so the entry commits or rolls back with the change.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	return RecordAudit(ctx, s, e)
}

// RecordAudit appends an entry to the audit log, on the pool or inside the
// caller's transaction (so the entry commits with the change it records).
func RecordAudit(ctx context.Context, q Querier, e AuditEntry) error {
	detail := []byte("{}")
	if e.Detail != nil {
		b, err := json.Marshal(e.Detail)
		if err != nil {
			return fmt.Errorf("audit %s: encode detail: %w", e.Action, err)
		}
		if string(b) != "null" {
			detail = b
		}
	}
	_, err := q.Exec(ctx, `INSERT INTO audit_log (actor_id, actor_name, action, target_type, target_id, project_id, environment_id, client_addr, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		e.ActorID, e.ActorName, e.Action, e.TargetType, e.TargetID, e.ProjectID, e.EnvironmentID, e.ClientAddr, detail)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// AuditFilter selects audit entries; zero values do not filter.
type AuditFilter struct {
	// VisibleTo restricts to entries whose project or environment is granted
	// to a team of this user; nil = everything (admins).
	VisibleTo  *int64
	Action     string // exact, or a prefix when it ends in "*" (e.g. "user.*")
	Actor      string // actor username
	TargetType string
	TargetID   string
	Since      *time.Time // inclusive
	Until      *time.Time // exclusive
	Limit      int
	Offset     int
}

// ListAudit pages through audit entries, newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, int, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.VisibleTo != nil {
		args = append(args, *f.VisibleTo)
		where = append(where, VisibleToUserSQL(len(args), "a.project_id", "a.environment_id"))
	}
	if f.Action != "" {
		if p, ok := strings.CutSuffix(f.Action, "*"); ok {
			where = append(where, "a.action LIKE "+arg(likeEscape(p)+"%"))
		} else {
			where = append(where, "a.action = "+arg(f.Action))
		}
	}
	if f.Actor != "" {
		where = append(where, "a.actor_name = "+arg(f.Actor))
	}
	if f.TargetType != "" {
		where = append(where, "a.target_type = "+arg(f.TargetType))
	}
	if f.TargetID != "" {
		where = append(where, "a.target_id = "+arg(f.TargetID))
	}
	if f.Since != nil {
		where = append(where, "a.created_at >= "+arg(*f.Since))
	}
	if f.Until != nil {
		where = append(where, "a.created_at < "+arg(*f.Until))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var total int
	if err := s.db.QueryRow(ctx, "SELECT count(*) FROM audit_log a"+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count audit entries: %w", err)
	}
	q := `SELECT a.id, a.actor_id, a.actor_name, a.action, a.target_type, a.target_id, a.project_id, a.environment_id,
		a.client_addr, a.detail, a.created_at FROM audit_log a` + cond +
		" ORDER BY a.id DESC LIMIT " + arg(pageLimit(f.Limit)) + " OFFSET " + arg(max(f.Offset, 0))
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list audit entries: %w", err)
	}
	out, err := collectRows(rows, func(r pgx.Rows) (AuditEntry, error) {
		var e AuditEntry
		var detail []byte
		err := r.Scan(&e.ID, &e.ActorID, &e.ActorName, &e.Action, &e.TargetType, &e.TargetID, &e.ProjectID, &e.EnvironmentID,
			&e.ClientAddr, &detail, &e.CreatedAt)
		e.Detail = json.RawMessage(detail)
		return e, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list audit entries: %w", err)
	}
	return out, total, nil
}
