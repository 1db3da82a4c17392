package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/errs"
)

// Paging defaults: ?page= starts at 1; ?per_page= is 1..MaxPerPage.
const (
	DefaultPerPage = 50
	MaxPerPage     = 200
)

// Page is a requested page of a list.
type Page struct {
	Page    int
	PerPage int
}

// Limit is the SQL LIMIT of the page.
func (p Page) Limit() int { return p.PerPage }

// Offset is the SQL OFFSET of the page.
func (p Page) Offset() int { return (p.Page - 1) * p.PerPage }

// PageFrom reads ?page= and ?per_page=, naming a bad one in a 400.
func PageFrom(c echo.Context) (Page, error) {
	v := errs.Fields{}
	p := PageInto(c, v)
	return p, v.Err()
}

// PageInto reads ?page= and ?per_page= like PageFrom, adding problems to v
// (for handlers that validate more query parameters).
func PageInto(c echo.Context, v errs.Fields) Page {
	p := Page{Page: 1, PerPage: DefaultPerPage}
	if s := c.QueryParam("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1_000_000 {
			v.Add("page", "must be a whole number from 1")
		}
		p.Page = n
	}
	if s := c.QueryParam("per_page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPerPage {
			v.Add("per_page", "must be a whole number from 1 to %d", MaxPerPage)
		}
		p.PerPage = n
	}
	return p
}

// RenderList writes items (never null) as a page of a list
// (restapi.List) with total matching items.
func RenderList[T any](c echo.Context, items []T, total int, p Page) error {
	if items == nil {
		items = []T{}
	}
	return c.JSON(http.StatusOK, restapi.List[T]{Items: items, Total: total, Page: p.Page, PerPage: p.PerPage})
}

// RenderCappedList is RenderList for a list whose count stops at a bound:
// capped says there are more than total items.
func RenderCappedList[T any](c echo.Context, items []T, total int, capped bool, p Page) error {
	if items == nil {
		items = []T{}
	}
	return c.JSON(http.StatusOK, restapi.List[T]{Items: items, Total: total, TotalCapped: capped, Page: p.Page, PerPage: p.PerPage})
}
