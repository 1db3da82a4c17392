package registry

import (
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
)

const (
	regUser = "ci-user"
	regPass = "reg-pass-5f1e2d"
)

// pushed is a registry with repository demo/web holding v1.0.0 and main
// (image A) and v1.1.0 and features-login (image B, built later).
type pushed struct {
	reg     *testutil.Registry
	created map[string]time.Time // tag -> image config created
}

func startFixture(t *testing.T) *pushed {
	t.Helper()
	reg := testutil.StartRegistry(t, regUser, regPass)
	suffix := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	refA := testutil.ScratchImage(t, "./scripts/images/demo-web", "nullops-test/registry-a:"+suffix, "--image-a-"+suffix)
	refB := testutil.ScratchImage(t, "./scripts/images/demo-web", "nullops-test/registry-b:"+suffix, "--image-b-"+suffix)
	t.Cleanup(func() { _, _ = testutil.DockerErr("rmi", refA, refB) })
	reg.Push(t, refA, "demo/web", "v1.0.0", "main")
	reg.Push(t, refB, "demo/web", "v1.1.0", "features-login")
	p := &pushed{reg: reg, created: map[string]time.Time{}}
	for ref, tags := range map[string][]string{refA: {"v1.0.0", "main"}, refB: {"v1.1.0", "features-login"}} {
		out := testutil.Docker(t, "image", "inspect", "-f", "{{.Created}}", ref)
		ts, err := time.Parse(time.RFC3339Nano, out)
		if err != nil {
			t.Fatalf("parse created %q: %v", out, err)
		}
		for _, tag := range tags {
			p.created[tag] = ts
		}
	}
	return p
}

func endpoint(r *testutil.Registry) Endpoint {
	return Endpoint{URL: "http://" + r.Host, Username: regUser, Password: regPass}
}

// TestAgainstRealRegistry shares one registry and one set of pushed images
// between its subtests (pushing is the slow part); "cache" pushes another tag
// and so runs last.
func TestAgainstRealRegistry(t *testing.T) {
	p := startFixture(t)
	t.Run("listing", func(t *testing.T) { testTagListing(t, p) })
	t.Run("errors", func(t *testing.T) { testRegistryErrors(t, p) })
	t.Run("cache", func(t *testing.T) { testCacheExpires(t, p) })
}

func testTagListing(t *testing.T, p *pushed) {
	c := New()
	ctx := testutil.Context(t, 60*time.Second)
	ep := endpoint(p.reg)

	cases := []struct {
		pattern string
		want    []string
		order   string
	}{
		{"v*", []string{"v1.1.0", "v1.0.0"}, OrderSemver},
		{"v1.0.*", []string{"v1.0.0"}, OrderSemver},
		{"features-*", []string{"features-login"}, OrderCreated},
		{"main", []string{"main"}, OrderCreated},
		{"1.2.*", []string{}, OrderSemver},
		{"*-*", []string{"features-login"}, OrderCreated},
	}
	for _, tc := range cases {
		l, err := c.Tags(ctx, ep, "demo/web", tc.pattern)
		if err != nil {
			t.Fatalf("pattern %q: %v", tc.pattern, err)
		}
		if !reflect.DeepEqual(l.Tags, tc.want) {
			t.Errorf("pattern %q: tags %v, want %v", tc.pattern, l.Tags, tc.want)
		}
		if l.Order != tc.order {
			t.Errorf("pattern %q: order %s, want %s", tc.pattern, l.Order, tc.order)
		}
	}

	// Mixed tags are ordered by the image's created time, newest first.
	all, err := c.Tags(ctx, ep, "demo/web", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"v1.0.0", "v1.1.0", "features-login", "main"}
	sort.SliceStable(want, func(i, j int) bool {
		a, b := p.created[want[i]], p.created[want[j]]
		if !a.Equal(b) {
			return a.After(b)
		}
		return want[i] > want[j]
	})
	t.Logf("all tags %v (order %s); created %v", all.Tags, all.Order, p.created)
	if all.Order != OrderCreated || !reflect.DeepEqual(all.Tags, want) {
		t.Fatalf("all tags %v (%s), want %v (created)", all.Tags, all.Order, want)
	}
	if p.created["v1.1.0"].After(p.created["v1.0.0"]) && all.Tags[0] != "v1.1.0" {
		t.Fatalf("newest image's tags should come first: %v", all.Tags)
	}
}

func testCacheExpires(t *testing.T, p *pushed) {
	c := New()
	now := time.Now()
	var mu sync.Mutex
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx := testutil.Context(t, 60*time.Second)
	ep := endpoint(p.reg)

	first, err := c.Tags(ctx, ep, "demo/web", "v*")
	if err != nil {
		t.Fatal(err)
	}
	ref := testutil.ScratchImage(t, "./scripts/images/demo-web", "nullops-test/registry-c:"+fmt.Sprint(os.Getpid()))
	t.Cleanup(func() { _, _ = testutil.DockerErr("rmi", ref) })
	p.reg.Push(t, ref, "demo/web", "v2.0.0")

	cached, err := c.Tags(ctx, ep, "demo/web", "v*")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cached.Tags, first.Tags) {
		t.Fatalf("within TTL the cached listing should be served: %v vs %v", cached.Tags, first.Tags)
	}
	mu.Lock()
	now = now.Add(c.TTL + time.Second)
	mu.Unlock()
	fresh, err := c.Tags(ctx, ep, "demo/web", "v*")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"v2.0.0", "v1.1.0", "v1.0.0"}; !reflect.DeepEqual(fresh.Tags, want) {
		t.Fatalf("after TTL: %v, want %v", fresh.Tags, want)
	}
}

func testRegistryErrors(t *testing.T, p *pushed) {
	c := New()
	ctx := testutil.Context(t, 60*time.Second)
	good := endpoint(p.reg)

	if err := c.Check(ctx, good); err != nil {
		t.Fatalf("check with good credentials: %v", err)
	}

	bad := good
	bad.Password = "wrong-password-123"
	_, err := c.Tags(ctx, bad, "demo/web", "v*")
	expectKind(t, err, KindUnauthorized, "refused the credentials")
	expectKind(t, c.Check(ctx, bad), KindUnauthorized, "refused the credentials")

	anon := Endpoint{URL: good.URL}
	_, err = c.Tags(ctx, anon, "demo/web", "")
	expectKind(t, err, KindUnauthorized, "anonymous")
	expectKind(t, c.Check(ctx, anon), KindUnauthorized, "requires credentials")

	_, err = c.Tags(ctx, good, "demo/nothing-here", "")
	expectKind(t, err, KindNotFound, `no repository "demo/nothing-here"`)

	_, err = c.Tags(ctx, good, "Bad Image", "")
	expectKind(t, err, KindInvalid, "not a repository path")
	_, err = c.Tags(ctx, good, "demo/web", "[")
	expectKind(t, err, KindInvalid, "glob")

	for _, e := range []error{err} {
		if e != nil && strings.Contains(e.Error(), regPass) {
			t.Fatalf("error message contains the password: %v", e)
		}
	}
}

func TestRegistryDownIsClearAndFast(t *testing.T) {
	c := New()
	ctx := testutil.Context(t, 60*time.Second)
	port := testutil.FreePort(t) // nothing listens here
	ep := Endpoint{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Username: regUser, Password: regPass}
	start := time.Now()
	_, err := c.Tags(ctx, ep, "demo/web", "v*")
	expectKind(t, err, KindUnreachable, "unreachable")
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("failing took %s; a down registry must fail fast", d)
	}
	expectKind(t, c.Check(ctx, ep), KindUnreachable, "unreachable")
	if strings.Contains(err.Error(), regPass) {
		t.Fatalf("error contains the password: %v", err)
	}
}

func TestRegistryStoppedMidway(t *testing.T) {
	// A registry that was up and then goes away (the only way in is a
	// loopback forwarder that we close): clear errors, no crash, and the
	// cached listing is still served within its TTL.
	reg := testutil.StartRegistry(t, regUser, regPass)
	ref := testutil.ScratchImage(t, "./scripts/images/demo-web", "nullops-test/registry-d:"+fmt.Sprint(os.Getpid()))
	t.Cleanup(func() { _, _ = testutil.DockerErr("rmi", ref) })
	reg.Push(t, ref, "demo/web", "v1.0.0")
	fwd := forward(t, reg.Host)
	c := New()
	ctx := testutil.Context(t, 60*time.Second)
	ep := Endpoint{URL: "http://" + fwd.addr(), Username: regUser, Password: regPass}
	if _, err := c.Tags(ctx, ep, "demo/web", "v*"); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ctx, ep); err != nil {
		t.Fatal(err)
	}
	fwd.close()
	if l, err := c.Tags(ctx, ep, "demo/web", "v*"); err != nil || len(l.Tags) != 1 {
		t.Fatalf("cached listing: %v %v", l, err)
	}
	c.Forget()
	_, err := c.Tags(ctx, ep, "demo/web", "v*")
	expectKind(t, err, KindUnreachable, "unreachable")
	expectKind(t, c.Check(ctx, ep), KindUnreachable, "unreachable")
}

// forwarder is a loopback TCP forwarder that can be cut.
type forwarder struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func forward(t *testing.T, target string) *forwarder {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{l: l}
	t.Cleanup(f.close)
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, in, out)
			f.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return f
}

func (f *forwarder) addr() string { return f.l.Addr().String() }

func (f *forwarder) close() {
	f.l.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

func expectKind(t *testing.T, err error, kind Kind, contains string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %s", kind)
	}
	if k := KindOf(err); k != kind {
		t.Fatalf("error kind %q (%v); want %q", k, err, kind)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not mention %q", err, contains)
	}
}
