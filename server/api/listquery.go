package api

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/server/errs"
)

// maxSearch bounds ?q= of list endpoints.
const maxSearch = 100

// searchQuery reads ?q=, a case-insensitive substring to search for.
func searchQuery(c echo.Context, v errs.Fields) string {
	q := strings.TrimSpace(c.QueryParam("q"))
	if utf8.RuneCountInString(q) > maxSearch {
		v.Add("q", "at most %d characters", maxSearch)
		return ""
	}
	return q
}

// queryBool reads an optional true/false query parameter.
func queryBool(c echo.Context, name string, v errs.Fields) bool {
	switch c.QueryParam(name) {
	case "", "false", "0":
		return false
	case "true", "1":
		return true
	}
	v.Add(name, "must be true or false")
	return false
}

// sortOrder reads ?sort= (one of the keys of columns, "" = the list's
// default order) and ?order= (asc, the default, or desc).
func sortOrder[V any](c echo.Context, v errs.Fields, columns map[string]V) (string, bool) {
	sort := c.QueryParam("sort")
	if _, ok := columns[sort]; sort != "" && !ok {
		keys := make([]string, 0, len(columns))
		for k := range columns {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		v.Add("sort", "must be one of %s", strings.Join(keys, ", "))
	}
	switch c.QueryParam("order") {
	case "", "asc":
		return sort, false
	case "desc":
		return sort, true
	}
	v.Add("order", "must be asc or desc")
	return sort, false
}
