package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nullops/nullops/internal/version"
	"github.com/nullops/nullops/restapi"
)

// ExitError carries a process exit code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }

const usage = `nullops — command line for NullOps (CI jobs and admins)

Usage:
  nullops version
  nullops login --server URL --token TOKEN
  nullops deployments list [--project P] [--environment E] [--status S]
  nullops deployments create --project P --environment E --name N [--tag service=tag ...] [--wait] [--timeout 10m]
  nullops deployments delete DEPLOYMENT [--environment E] [--wait] [--timeout 5m]
  nullops deployments extend DEPLOYMENT [--environment E]
  nullops deployments clone DEPLOYMENT --name N [--tag service=tag ...] [--environment E]
  nullops logs [-f] [--tail N] --service S DEPLOYMENT [--environment E]
  nullops wait DEPLOYMENT [--environment E] [--timeout 10m]

DEPLOYMENT is an id, or a name together with --environment. P and E are names or ids.
Add -o json to any command for machine-readable output. NULLOPS_SERVER and
NULLOPS_TOKEN override the profile saved by login.
`

// Run executes the CLI with args (without the program name).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return explain(run(ctx, args, stdout, stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	switch args[0] {
	case "version", "--version":
		_, err := fmt.Fprintln(stdout, version.Line("nullops"))
		return err
	case "login":
		return login(ctx, args[1:], stdout)
	case "deployments", "deployment", "dep":
		if len(args) < 2 {
			return &ExitError{Code: 2, Err: errors.New("deployments: missing subcommand (list, create, delete, extend, clone)")}
		}
		switch args[1] {
		case "list", "ls":
			return listDeployments(ctx, args[2:], stdout)
		case "create":
			return createDeployment(ctx, args[2:], stdout, stderr)
		case "delete", "rm":
			return actOn(ctx, "delete", args[2:], stdout, stderr)
		case "extend":
			return actOn(ctx, "extend", args[2:], stdout, stderr)
		case "clone":
			return cloneDeployment(ctx, args[2:], stdout)
		}
		return &ExitError{Code: 2, Err: fmt.Errorf("deployments: unknown subcommand %q", args[1])}
	case "logs":
		return logs(ctx, args[1:], stdout)
	case "wait":
		return waitCmd(ctx, args[1:], stdout, stderr)
	}
	return &ExitError{Code: 2, Err: fmt.Errorf("unknown command %q; run nullops --help", args[0])}
}

type tagFlags map[string]string

func (t tagFlags) String() string { return "" }
func (t tagFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" || val == "" {
		return fmt.Errorf("--tag wants service=tag, got %q", v)
	}
	t[k] = val
	return nil
}

// parse parses flags that may come before or after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, &ExitError{Code: 2, Err: fmt.Errorf("%s: %w", fs.Name(), err)}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func client() (*restapi.Client, error) {
	p, err := LoadProfile()
	if err != nil {
		return nil, &ExitError{Code: 2, Err: err}
	}
	return NewClient(p), nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func login(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	server := fs.String("server", os.Getenv("NULLOPS_SERVER"), "server URL, e.g. https://nullops.example.com")
	token := fs.String("token", os.Getenv("NULLOPS_TOKEN"), "API token (create one in the UI under Tokens)")
	out := fs.String("o", "", "output format: json")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *server == "" || *token == "" {
		return &ExitError{Code: 2, Err: errors.New("login: --server and --token are required")}
	}
	me, err := NewClient(Profile{Server: *server, Token: *token}).Me(ctx)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	path, err := SaveProfile(Profile{Server: *server, Token: *token})
	if err != nil {
		return err
	}
	if *out == "json" {
		return printJSON(stdout, map[string]string{"username": me.User.Username, "role": me.User.Role, "profile": path})
	}
	fmt.Fprintf(stdout, "logged in to %s as %s (%s); profile saved in %s\n", *server, me.User.Username, me.User.Role, path)
	return nil
}

// clientForProjectEnv opens the profile's client and resolves a project and
// an environment given by name or id ("" stays 0).
func clientForProjectEnv(ctx context.Context, project, env string) (*restapi.Client, int64, int64, error) {
	c, err := client()
	if err != nil {
		return nil, 0, 0, err
	}
	pid, err := resolveID(ctx, c, "projects", project)
	if err != nil {
		return nil, 0, 0, err
	}
	eid, err := resolveID(ctx, c, "environments", env)
	return c, pid, eid, err
}

// resolveID turns a name or id of a project/environment into an id.
func resolveID(ctx context.Context, c *restapi.Client, kind, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	if id, err := strconv.ParseInt(v, 10, 64); err == nil {
		return id, nil
	}
	var id int64
	var err error
	if kind == "projects" {
		id, err = findByName(ctx, c, kind, v, func(p restapi.Project) (int64, string) { return p.ID, p.Name })
	} else {
		id, err = findByName(ctx, c, kind, v, func(e restapi.Environment) (int64, string) { return e.ID, e.Name })
	}
	if err == nil && id == 0 {
		err = fmt.Errorf("no %s named %q (or you may not see it)", strings.TrimSuffix(kind, "s"), v)
	}
	return id, err
}

// findByName pages through GET /<kind> for the item named name (0 if none).
func findByName[T any](ctx context.Context, c *restapi.Client, kind, name string, key func(T) (int64, string)) (int64, error) {
	for page := 1; page < 100; page++ {
		var l restapi.List[T]
		if err := c.Do(ctx, "GET", fmt.Sprintf("/%s?per_page=100&page=%d", kind, page), nil, &l); err != nil {
			return 0, err
		}
		for _, it := range l.Items {
			if id, n := key(it); n == name {
				return id, nil
			}
		}
		if len(l.Items) < 100 {
			break
		}
	}
	return 0, nil
}

// resolveDeployment finds a deployment by id, or by name within an environment.
func resolveDeployment(ctx context.Context, c *restapi.Client, ref, env string) (restapi.Deployment, error) {
	var d restapi.Deployment
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return c.Deployment(ctx, id)
	}
	if env == "" {
		return d, &ExitError{Code: 2, Err: fmt.Errorf("deployment %q: give its id, or its name with --environment", ref)}
	}
	envID, err := resolveID(ctx, c, "environments", env)
	if err != nil {
		return d, err
	}
	for page := 1; page < 100; page++ {
		l, err := c.Deployments(ctx, url.Values{"environment": {fmt.Sprint(envID)}, "per_page": {"100"}, "page": {fmt.Sprint(page)}})
		if err != nil {
			return d, err
		}
		for _, it := range l.Items {
			if it.Name == ref {
				return it, nil
			}
		}
		if len(l.Items) < 100 {
			break
		}
	}
	return d, fmt.Errorf("no deployment named %q in environment %s", ref, env)
}

func listDeployments(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("deployments list", flag.ContinueOnError)
	project := fs.String("project", "", "project name or id")
	env := fs.String("environment", "", "environment name or id")
	status := fs.String("status", "", "status filter")
	out := fs.String("o", "", "output format: json")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, pid, eid, err := clientForProjectEnv(ctx, *project, *env)
	if err != nil {
		return err
	}
	q := url.Values{"per_page": {"100"}}
	if pid > 0 {
		q.Set("project", fmt.Sprint(pid))
	}
	if eid > 0 {
		q.Set("environment", fmt.Sprint(eid))
	}
	if *status != "" {
		q.Set("status", *status)
	}
	l, err := c.Deployments(ctx, q)
	if err != nil {
		return err
	}
	if *out == "json" {
		return printJSON(stdout, l.Items)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPROJECT\tENVIRONMENT\tSTATUS\tOWNER\tEXPIRES IN\tLINKS")
	for _, d := range l.Items {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Name, d.Project, d.Environment, d.Status, d.Owner, time.Until(d.ExpiresAt).Round(time.Minute), liveLinks(d))
	}
	return tw.Flush()
}

// liveLinks is a deployment's links in full, "service=URL" separated by
// spaces, or "-" when nothing answers there (failed, deleting, deleted).
func liveLinks(d restapi.Deployment) string {
	if len(d.URLs) == 0 || d.Status == "failed" || d.Status == "deleting" || d.Status == "deleted" {
		return "-"
	}
	keys := make([]string, 0, len(d.URLs))
	for k := range d.URLs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + d.URLs[k]
	}
	return strings.Join(parts, " ")
}

func printDeployment(w io.Writer, d restapi.Deployment, out string) error {
	if out == "json" {
		return printJSON(w, d)
	}
	fmt.Fprintf(w, "deployment %d %s (%s/%s): %s", d.ID, d.Name, d.Project, d.Environment, d.Status)
	if d.Reason != "" {
		fmt.Fprintf(w, " — %s", d.Reason)
	}
	fmt.Fprintln(w)
	keys := make([]string, 0, len(d.URLs))
	for k := range d.URLs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s: %s\n", k, d.URLs[k])
	}
	return nil
}

func createDeployment(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("deployments create", flag.ContinueOnError)
	project := fs.String("project", "", "project name or id (required)")
	env := fs.String("environment", "", "environment name or id (required)")
	name := fs.String("name", "", "deployment name, a DNS label such as pr-42 (required)")
	wait := fs.Bool("wait", false, "wait until the deployment is running (exit 1 if it fails)")
	timeout := fs.Duration("timeout", 15*time.Minute, "how long --wait waits")
	out := fs.String("o", "", "output format: json")
	tags := tagFlags{}
	fs.Var(tags, "tag", "service=tag for a selectable service (repeatable)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *project == "" || *env == "" || *name == "" {
		return &ExitError{Code: 2, Err: errors.New("deployments create: --project, --environment and --name are required")}
	}
	c, pid, eid, err := clientForProjectEnv(ctx, *project, *env)
	if err != nil {
		return err
	}
	d, err := c.CreateDeployment(ctx, restapi.CreateDeploymentRequest{ProjectID: pid, EnvironmentID: eid, Name: *name, Tags: tags})
	if err != nil {
		return err
	}
	if *wait {
		if d, err = WaitRunning(ctx, c, d.ID, *timeout, stderr); err != nil {
			_ = printDeployment(stdout, d, *out)
			return err
		}
	}
	return printDeployment(stdout, d, *out)
}

func actOn(ctx context.Context, action string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("deployments "+action, flag.ContinueOnError)
	out := fs.String("o", "", "output format: json")
	var wait *bool
	var timeout *time.Duration
	if action == "delete" {
		wait = fs.Bool("wait", false, "wait until everything is removed and the name is free again")
		timeout = fs.Duration("timeout", 5*time.Minute, "how long --wait waits (exit 3)")
	}
	c, d, err := deploymentArg(ctx, fs, args, nil, fmt.Sprintf("deployments %s: give exactly one DEPLOYMENT", action))
	if err != nil {
		return err
	}
	if d, err = c.ChangeDeployment(ctx, d.ID, action); err != nil {
		return err
	}
	if wait != nil && *wait {
		if err := WaitGone(ctx, c, d.ID, *timeout, stderr); err != nil {
			return err
		}
		d.Status = "deleted"
	}
	return printDeployment(stdout, d, *out)
}

// deploymentArg parses the flags of a command on one DEPLOYMENT (an id, or a
// name with --environment E, a flag it adds to fs) and resolves it. ok tells
// whether the command's own required flags are set; usage is the message
// (exit 2) when something is missing.
func deploymentArg(ctx context.Context, fs *flag.FlagSet, args []string, ok func() bool, usage string) (*restapi.Client, restapi.Deployment, error) {
	env := fs.String("environment", "", "environment name or id (when DEPLOYMENT is a name)")
	pos, err := parse(fs, args)
	if err != nil {
		return nil, restapi.Deployment{}, err
	}
	if len(pos) != 1 || ok != nil && !ok() {
		return nil, restapi.Deployment{}, &ExitError{Code: 2, Err: errors.New(usage)}
	}
	c, err := client()
	if err != nil {
		return nil, restapi.Deployment{}, err
	}
	d, err := resolveDeployment(ctx, c, pos[0], *env)
	return c, d, err
}

// WaitGone polls until the deployment is deleted (or no longer visible).
func WaitGone(ctx context.Context, c *restapi.Client, id int64, timeout time.Duration, stderr io.Writer) error {
	_, err := watchStatus(ctx, c, id, timeout, 500*time.Millisecond, "deleted", stderr,
		func(d restapi.Deployment, err error) (bool, error) {
			var ae *restapi.Error
			return errors.As(err, &ae) && ae.Status == http.StatusNotFound || err == nil && d.Status == "deleted", nil
		})
	return err
}

func cloneDeployment(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("deployments clone", flag.ContinueOnError)
	name := fs.String("name", "", "name of the new deployment (required)")
	out := fs.String("o", "", "output format: json")
	tags := tagFlags{}
	fs.Var(tags, "tag", "service=tag to change (repeatable)")
	c, src, err := deploymentArg(ctx, fs, args, func() bool { return *name != "" }, "deployments clone: give one DEPLOYMENT and --name")
	if err != nil {
		return err
	}
	d, err := c.CloneDeployment(ctx, src.ID, restapi.CloneDeploymentRequest{Name: *name, Tags: tags})
	if err != nil {
		return err
	}
	return printDeployment(stdout, d, *out)
}

func logs(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	service := fs.String("service", "", "service (pipeline node id) whose logs to show (required)")
	follow := fs.Bool("f", false, "follow the log")
	tail := fs.Int("tail", 100, "lines from the end (0 = all)")
	c, d, err := deploymentArg(ctx, fs, args, func() bool { return *service != "" }, "logs: give one DEPLOYMENT and --service")
	if err != nil {
		return err
	}
	path := fmt.Sprintf("/deployments/%d/logs%s", d.ID, query("service", *service, "follow", strconv.FormatBool(*follow), "tail", strconv.Itoa(*tail)))
	return c.Stream(ctx, path, stdout)
}

func waitCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 15*time.Minute, "give up after this long (exit 3)")
	out := fs.String("o", "", "output format: json")
	c, d, err := deploymentArg(ctx, fs, args, nil, "wait: give exactly one DEPLOYMENT")
	if err != nil {
		return err
	}
	d, err = WaitRunning(ctx, c, d.ID, *timeout, stderr)
	if perr := printDeployment(stdout, d, *out); perr != nil && err == nil {
		err = perr
	}
	return err
}

// WaitRunning polls until the deployment is running (nil), failed or gone
// (exit 1) or the timeout passes (exit 3).
func WaitRunning(ctx context.Context, c *restapi.Client, id int64, timeout time.Duration, stderr io.Writer) (restapi.Deployment, error) {
	return watchStatus(ctx, c, id, timeout, time.Second, "running", stderr, func(d restapi.Deployment, err error) (bool, error) {
		var ae *restapi.Error
		switch {
		case errors.As(err, &ae) && ae.Status < 500:
			return true, &ExitError{Code: 1, Err: err}
		case err != nil:
			return false, nil // the server may be restarting: keep asking
		case d.Status == "running":
			return true, nil
		case d.Status == "failed":
			msg := d.Reason
			if d.FailedStep != "" {
				msg = fmt.Sprintf("step %s: %s", d.FailedStep, d.Reason)
			}
			return true, &ExitError{Code: 1, Err: fmt.Errorf("deployment %d failed: %s", id, msg)}
		case d.Status == "deleting" || d.Status == "deleted":
			return true, &ExitError{Code: 1, Err: fmt.Errorf("deployment %d is %s", id, d.Status)}
		}
		return false, nil
	})
}

// watchStatus GETs the deployment every interval, prints each new status on
// stderr and asks done whether to stop; after timeout it gives up with exit 3.
func watchStatus(ctx context.Context, c *restapi.Client, id int64, timeout, interval time.Duration, want string, stderr io.Writer,
	done func(restapi.Deployment, error) (bool, error)) (restapi.Deployment, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		d, err := c.Deployment(ctx, id)
		if err == nil && d.Status != last {
			fmt.Fprintf(stderr, "deployment %d: %s\n", id, d.Status)
			last = d.Status
		}
		if stop, result := done(d, err); stop {
			return d, result
		}
		select {
		case <-ctx.Done():
			return d, &ExitError{Code: 3, Err: fmt.Errorf("deployment %d not %s after %s (status %s)", id, want, timeout, last)}
		case <-time.After(interval):
		}
	}
}
