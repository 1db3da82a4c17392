package api

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
)

// renderDeploymentList answers a page of deployments as RenderCappedList
// does, byte for byte, without reflection: the deployments list is the
// busiest answer of the API, and encoding/json spent a fifth of its CPU
// time there (docs/benchmarks.md, "Deployments list").
// TestDeploymentListEncodingMatches compares both encodings on rows with
// every field set, so a field added to restapi.Deployment fails it until
// appendDeployment writes it too.
func renderDeploymentList(c echo.Context, items []restapi.Deployment, total int, capped bool, p Page) error {
	b := appendDeploymentList(make([]byte, 0, 1024*(len(items)+1)), items, total, capped, p)
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(b)))
	c.Response().WriteHeader(http.StatusOK)
	_, err := c.Response().Write(b)
	return err
}

// appendDeploymentList appends what encoding/json's Encoder writes for
// restapi.List[restapi.Deployment] (HTML-safe strings, a final newline).
func appendDeploymentList(b []byte, items []restapi.Deployment, total int, capped bool, p Page) []byte {
	b = append(b, `{"items":[`...)
	for i := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendDeployment(b, &items[i])
	}
	b = append(b, `],"total":`...)
	b = strconv.AppendInt(b, int64(total), 10)
	if capped {
		b = append(b, `,"total_capped":true`...)
	}
	b = append(b, `,"page":`...)
	b = strconv.AppendInt(b, int64(p.Page), 10)
	b = append(b, `,"per_page":`...)
	b = strconv.AppendInt(b, int64(p.PerPage), 10)
	return append(b, "}\n"...)
}

// appendDeployment appends a list row (Detail nil) in the field order and
// with the options of restapi.Deployment's JSON tags.
func appendDeployment(b []byte, d *restapi.Deployment) []byte {
	if d.Detail != nil {
		raw, err := json.Marshal(d)
		if err != nil {
			return append(b, "null"...)
		}
		return append(b, raw...)
	}
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, d.ID, 10)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, d.Name)
	b = append(b, `,"project_id":`...)
	b = strconv.AppendInt(b, d.ProjectID, 10)
	b = append(b, `,"project":`...)
	b = appendJSONString(b, d.Project)
	b = append(b, `,"environment_id":`...)
	b = strconv.AppendInt(b, d.EnvironmentID, 10)
	b = append(b, `,"environment":`...)
	b = appendJSONString(b, d.Environment)
	b = append(b, `,"node_id":`...)
	b = appendJSONIntPtr(b, d.NodeID)
	b = append(b, `,"node":`...)
	b = appendJSONString(b, d.Node)
	b = append(b, `,"node_status":`...)
	b = appendJSONString(b, d.NodeStatus)
	b = append(b, `,"pipeline_version":`...)
	b = strconv.AppendInt(b, int64(d.PipelineVersion), 10)
	b = append(b, `,"node_unreachable_since":`...)
	b = appendJSONTimePtr(b, d.NodeUnreachableSince)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, d.Status)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, d.Reason)
	b = append(b, `,"failed_step":`...)
	b = appendJSONString(b, d.FailedStep)
	b = append(b, `,"owner_id":`...)
	b = appendJSONIntPtr(b, d.OwnerID)
	b = append(b, `,"owner":`...)
	b = appendJSONString(b, d.Owner)
	b = append(b, `,"cloned_from":`...)
	b = appendJSONIntPtr(b, d.ClonedFrom)
	b = append(b, `,"tags":`...)
	b = appendJSONStringMap(b, d.Tags)
	b = append(b, `,"cpu":`...)
	b = appendJSONFloat(b, d.CPU)
	b = append(b, `,"memory_mb":`...)
	b = strconv.AppendInt(b, d.MemoryMB, 10)
	b = append(b, `,"ttl_seconds":`...)
	b = strconv.AppendInt(b, d.TTLSeconds, 10)
	b = append(b, `,"last_activity_at":`...)
	b = appendJSONTime(b, d.LastActivityAt)
	b = append(b, `,"expires_at":`...)
	b = appendJSONTime(b, d.ExpiresAt)
	b = append(b, `,"delete_pending":`...)
	b = strconv.AppendBool(b, d.DeletePending)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, d.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendJSONTime(b, d.UpdatedAt)
	b = append(b, `,"deleted_at":`...)
	b = appendJSONTimePtr(b, d.DeletedAt)
	b = append(b, `,"access":`...)
	b = appendJSONString(b, d.Access)
	b = append(b, `,"urls":`...)
	b = appendJSONStringMap(b, d.URLs)
	b = append(b, `,"degraded":`...)
	b = strconv.AppendBool(b, d.Degraded)
	if d.DegradedReason != "" {
		b = append(b, `,"degraded_reason":`...)
		b = appendJSONString(b, d.DegradedReason)
	}
	return append(b, '}')
}

// appendJSONString writes s as encoding/json does (HTML-safe): plain
// printable ASCII directly, anything else through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			raw, _ := json.Marshal(s)
			return append(b, raw...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendJSONIntPtr(b []byte, v *int64) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *v, 10)
}

// appendJSONTime writes what time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds); a year it refuses goes through encoding/json.
func appendJSONTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		raw, _ := json.Marshal(t)
		return append(b, raw...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendJSONTimePtr(b []byte, t *time.Time) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	return appendJSONTime(b, *t)
}

// appendJSONFloat formats a float64 as encoding/json does.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		raw, _ := json.Marshal(f) // an error, as encoding/json gives
		return append(b, raw...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONStringMap writes a map with its keys sorted, as encoding/json
// does (null for a nil map).
func appendJSONStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	switch len(m) {
	case 0:
	case 1:
		for k, v := range m {
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, v)
		}
	default:
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, m[k])
		}
	}
	return append(b, '}')
}
