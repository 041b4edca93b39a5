package postgres

import (
	"reflect"
	"regexp"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// The prepared reads list their columns by hand, beside the bun rows they fill: a column added
// to conferenceRow or locationRow (a new field of a conference) but not to conferenceColumns
// fails here, naming it, rather than reading back as its zero value.
func TestPreparedReadsSelectEveryColumn(t *testing.T) {
	t.Parallel()
	db := bun.NewDB(nil, pgdialect.New())
	for alias, model := range map[string]reflect.Type{"c": reflect.TypeOf(conferenceRow{}), "l": reflect.TypeOf(locationRow{})} {
		for _, f := range db.Table(model).Fields {
			if !regexp.MustCompile(`\b` + alias + `\.` + regexp.QuoteMeta(f.Name) + `\b`).MatchString(conferenceColumns) {
				t.Errorf("conferenceColumns lacks %s.%s (%s.%s): add it there and to scanConference", alias, f.Name, model.Name(), f.GoName)
			}
			// What the writes return of the row they wrote, and of its location.
			returned := map[string]string{"c": returnedRow, "l": locationReturned}[alias]
			if !regexp.MustCompile(`\b` + regexp.QuoteMeta(f.Name) + `\b`).MatchString(returned) {
				t.Errorf("the writes do not return %s.%s (%s.%s): add it to writes.go", alias, f.Name, model.Name(), f.GoName)
			}
		}
	}
}

// The writes list the columns a client sets by hand too: a column of conferenceRow that the
// database does not keep itself but that the create's INSERT or the update's SET leaves out
// would be stored as its default, silently. This names it.
func TestWritesSetEveryColumn(t *testing.T) {
	t.Parallel()
	db := bun.NewDB(nil, pgdialect.New())
	kept := map[string]bool{"id": true, "version": true, "created": true, "updated": true} // the database's own
	lists := map[string]string{
		"the create's INSERT":       regexp.MustCompile(`INSERT INTO conferences \(([^)]*)\)`).FindStringSubmatch(createTemplate)[1],
		"the update's SET":          regexp.MustCompile(`UPDATE conferences SET\s*\(([^)]*)\)`).FindStringSubmatch(updateTemplate)[1],
		"the update's change check": regexp.MustCompile(`WHERE id = old_id AND \(([^)]*)\)`).FindStringSubmatch(updateTemplate)[1],
	}
	for _, f := range db.Table(reflect.TypeOf(conferenceRow{})).Fields {
		if kept[f.Name] {
			continue
		}
		for what, list := range lists {
			if !regexp.MustCompile(`\b` + regexp.QuoteMeta(f.Name) + `\b`).MatchString(list) {
				t.Errorf("%s lacks %s (conferenceRow.%s): add it in writes.go, with its parameter", what, f.Name, f.GoName)
			}
		}
	}
}
