package backend

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	_ "github.com/mattn/go-sqlite3"
)

func TestContiguousEnd(t *testing.T) {
	run := func(from, to int64) []int64 {
		var ids []int64
		for id := from; id <= to; id++ {
			ids = append(ids, id)
		}
		return ids
	}
	tests := []struct {
		name  string
		ids   []int64
		after int64
		want  int64
	}{
		{"empty log", nil, 0, 0},
		{"nothing after", run(1, 5), 5, 5},
		{"no gap", run(1, 5), 2, 5},
		{"gap in the middle", append(run(1, 5), run(7, 9)...), 2, 5},
		{"gap right after the start", append(run(1, 3), run(5, 9)...), 3, 3},
		{"start below a compacted hole", append(run(1, 3), run(5, 9)...), 4, 9},
		{"a gap on the second page", append(run(1, idsPage+10), run(idsPage+12, idsPage+20)...), 0, idsPage + 10},
		{"exactly one page", run(1, idsPage), 0, idsPage},
		{"several pages", run(1, 3*idsPage+7), 1, 3*idsPage + 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := sql.Open("sqlite3", ":memory:")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1) // one in-memory database
			if _, err := db.Exec("CREATE TABLE kine (id INTEGER PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
			for _, id := range tt.ids {
				if _, err := db.Exec("INSERT INTO kine (id) VALUES (?)", id); err != nil {
					t.Fatal(err)
				}
			}
			got, err := contiguousEnd(context.Background(), db, idsAfterQuery("sqlite"), tt.after)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("contiguousEnd(after %d) over %s = %d, want %d", tt.after, span(tt.ids), got, tt.want)
			}
		})
	}
}

// span prints ids as runs: 1-5 7-9.
func span(ids []int64) string {
	out := ""
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		out += fmt.Sprintf(" %d-%d", ids[i], ids[j])
		i = j + 1
	}
	if out == "" {
		return "no ids"
	}
	return out[1:]
}
