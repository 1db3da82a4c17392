package store_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOnlyTheStoreSpeaksSQL: no server package but server/store (and its
// test helpers) imports pgx, so SQL, transactions and their drivers stay
// behind the store's one API.
func TestOnlyTheStoreSpeaksSQL(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}: {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`,
		"github.com/nullops/nullops/server/...", "github.com/nullops/nullops/cmd/nullops-server").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ": ")
		if strings.HasPrefix(pkg, "github.com/nullops/nullops/server/store") {
			continue
		}
		for _, imp := range strings.Fields(imports) {
			if strings.HasPrefix(imp, "github.com/jackc/pgx") {
				t.Errorf("%s imports %s: use server/store (Store.InTx for a transaction)", pkg, imp)
			}
		}
	}
}

// TestStoreMethodsJoinTheTransaction: a Store method that queried s.Pool
// would run outside the transaction of a Store given by InTx; methods use
// s.db (the pool, or the transaction).
func TestStoreMethodsJoinTheTransaction(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\bs\.Pool\.(Query|QueryRow|Exec|SendBatch|Begin)\(`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if re.MatchString(line) {
				t.Errorf("%s:%d: %s — use s.db so the method works inside InTx", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}
