package testutil

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// CPU accounting for benchmarks that report the CPU each process spent
// per operation next to the reference they compare with.

// ProcCPU sums the user and system time of processes (clock ticks of
// 10 ms); processes that are gone count 0.
func ProcCPU(pids ...int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		sum += procCPU(pid)
	}
	return sum
}

func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces) in parentheses.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// SelfCPU is the user and system time of this process so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// LoadAverage is the 1-minute load average (0 when unknown).
func LoadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// BackendPIDs are the PostgreSQL backends connected to pool's database.
func BackendPIDs(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	rows, err := pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			return nil, err
		}
		out = append(out, pid)
	}
	return out, rows.Err()
}

// BackendCPU measures the CPU the backends of a database spend between
// its creation and Spent, including backends that connect in between
// (those that exit in between are lost).
type BackendCPU struct {
	pool     *pgxpool.Pool
	start    map[int]time.Duration
	sessions int64
}

// NewBackendCPU starts measuring.
func NewBackendCPU(ctx context.Context, pool *pgxpool.Pool) (*BackendCPU, error) {
	pids, err := BackendPIDs(ctx, pool)
	if err != nil {
		return nil, err
	}
	m := &BackendCPU{pool: pool, start: map[int]time.Duration{}}
	for _, pid := range pids {
		m.start[pid] = procCPU(pid)
	}
	if m.sessions, err = sessions(ctx, pool); err != nil {
		return nil, err
	}
	return m, nil
}

// NewSessions is the number of connections (backends) the database
// accepted since NewBackendCPU: a pool that keeps its connections opens
// none; one that loses them (e.g. a cancelled query closes its connection)
// pays a backend start for each. PostgreSQL counts a session when it
// flushes its statistics, so a count read at once can lag by about a second.
func (m *BackendCPU) NewSessions(ctx context.Context) (int64, error) {
	n, err := sessions(ctx, m.pool)
	return n - m.sessions, err
}

func sessions(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var n int64
	err := pool.QueryRow(ctx, `SELECT sessions FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	return n, err
}

// Spent is the backends' CPU since NewBackendCPU.
func (m *BackendCPU) Spent(ctx context.Context) (time.Duration, error) {
	pids, err := BackendPIDs(ctx, m.pool)
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, pid := range pids {
		sum += procCPU(pid) - m.start[pid]
	}
	return sum, nil
}
