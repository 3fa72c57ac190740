package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/internal/testutil"
)

func TestOpenMissing(t *testing.T) {
	st, path := openTemp(t)
	st.Lock()
	if got := len(st.Changes()); got != 0 {
		t.Errorf("got %d changes, want 0", got)
	}
	var v string
	if err := st.Get("x", &v); !errors.Is(err, ErrNoState) {
		t.Errorf("got error %v, want ErrNoState", err)
	}
	st.Unlock()
	// Nothing was modified, so nothing is written (flash wears).
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got state file after an unmodified Unlock (stat error %v), want none", err)
	}
}

func TestGetSet(t *testing.T) {
	type app struct {
		Name string `json:"name"`
		Rev  int    `json:"rev"`
	}
	var nilApp *app
	tests := []struct {
		name  string
		value any
		get   any // pointer to decode into
		want  any // nil: the key is deleted
	}{
		{"string", "hello", new(string), "hello"},
		{"struct", app{"hello", 3}, new(app), app{"hello", 3}},
		{"map", map[string]int{"a": 1}, new(map[string]int), map[string]int{"a": 1}},
		{"nil deletes", nil, new(string), nil},
		{"typed nil deletes", nilApp, new(app), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, path := openTemp(t)
			st.Lock()
			st.Set("k", "previous")
			st.Set("k", tt.value)
			st.Unlock()
			st = reopen(t, path)
			st.Lock()
			defer st.Unlock()
			err := st.Get("k", tt.get)
			if tt.want == nil {
				if !errors.Is(err, ErrNoState) {
					t.Errorf("got error %v, want ErrNoState", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := reflect.ValueOf(tt.get).Elem().Interface(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestGetWrongType(t *testing.T) {
	st, _ := openTemp(t)
	st.Lock()
	defer st.Unlock()
	st.Set("k", "text")
	var n int
	if err := st.Get("k", &n); err == nil || errors.Is(err, ErrNoState) || !strings.Contains(err.Error(), `"k"`) {
		t.Errorf("got error %v, want a decode error naming the key", err)
	}
}

func TestPersistenceRoundTrip(t *testing.T) {
	spawn := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	testutil.Replace(t, &timeNow, func() time.Time { return spawn })
	st, path := openTemp(t)
	st.Lock()
	st.Set("apps", []string{"hello"})
	c := st.NewChange("install", "Install hello")
	c.Set("app", "hello")
	fetch := st.NewTask("fetch", "Fetch hello")
	fetch.Set("url", "https://example.com/hello.pdk")
	fetch.Logf("downloaded %d bytes", 42)
	mount := st.NewTask("mount", "Mount hello")
	mount.WaitFor(fetch)
	c.AddTask(fetch)
	c.AddTask(mount)
	fetch.SetStatus(DoneStatus)
	st.Unlock()

	st = reopen(t, path)
	st.Lock()
	defer st.Unlock()
	var apps []string
	var app, url string
	for key, err := range map[string]error{
		"apps": st.Get("apps", &apps), "change app": st.Change("1").Get("app", &app), "task url": st.Task("1").Get("url", &url),
	} {
		if err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
	c = st.Change("1")
	ts := c.Tasks()
	got := fmt.Sprintf("%v %s %s %s %s %s | %s %s %s %s | %s %s %s %v | %v %v",
		apps, app, url, c.Kind(), c.Summary(), c.Status(),
		ts[0].ID(), ts[0].Kind(), ts[0].Summary(), ts[0].Status(),
		ts[1].ID(), ts[1].Status(), ts[1].WaitTasks()[0].ID(), ts[0].Change() == c,
		c.SpawnTime().Equal(spawn), ts[0].ReadyTime().Equal(spawn))
	want := "[hello] hello https://example.com/hello.pdk install Install hello Doing | 1 fetch Fetch hello Done | 2 Do 1 true | true true"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got, want := ts[0].Log(), []string{"2030-01-02T03:04:05Z INFO downloaded 42 bytes"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got log %q, want %q", got, want)
	}
	// Ids keep increasing across a restart.
	if got := st.NewChange("x", "X").ID(); got != "2" {
		t.Errorf("got change id %s, want 2", got)
	}
	if got := st.NewTask("x", "X").ID(); got != "3" {
		t.Errorf("got task id %s, want 3", got)
	}
}

func TestOpenCorrupt(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"empty file", "", "unexpected end of JSON input"},
		{"garbage", "\x00\x00\x00", "invalid character"},
		{"truncated", `{"data":{"a":1`, "unexpected end of JSON input"},
		{"unknown status", `{"tasks":{"1":{"id":"1","status":"Sleeping"}},"last-task-id":1}`, `unknown status "Sleeping"`},
		{"id beyond last id", `{"changes":{"7":{"id":"7"}},"last-change-id":3}`, `invalid change id "7"`},
		{"id mismatch", `{"tasks":{"1":{"id":"2"}},"last-task-id":2}`, `task "1" has id "2"`},
		{"missing task", `{"changes":{"1":{"id":"1","task-ids":["1"]}},"last-change-id":1}`, "change 1 lists task 1"},
		{"missing change", `{"tasks":{"1":{"id":"1","change":"1"}},"last-task-id":1}`, "task 1 belongs to change 1"},
		{"missing wait", `{"tasks":{"1":{"id":"1","wait-for":["2"]}},"last-task-id":1}`, "task 1 waits for missing task 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path)
			if err == nil {
				t.Fatal("got no error, want one")
			}
			for _, want := range []string{"state file " + path + " is corrupt", tt.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got error %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestAccessWithoutLockPanics(t *testing.T) {
	st, _ := openTemp(t)
	st.Lock()
	task := st.NewTask("k", "K")
	st.Unlock()
	for name, f := range map[string]func(){
		"State.Set":      func() { st.Set("k", 1) },
		"State.Get":      func() { st.Get("k", new(int)) },
		"Task.Status":    func() { task.Status() },
		"State.Changes":  func() { st.Changes() },
		"Task.SetStatus": func() { task.SetStatus(DoneStatus) },
	} {
		func() {
			defer func() {
				if v := recover(); !strings.Contains(fmt.Sprint(v), "without holding its lock") {
					t.Errorf("%s without lock: got panic %v, want a lock error", name, v)
				}
			}()
			f()
		}()
	}
}

func TestChangesOrderedByID(t *testing.T) {
	st, _ := openTemp(t)
	st.Lock()
	defer st.Unlock()
	for range 11 {
		st.NewChange("k", "K")
	}
	var ids []string
	for _, c := range st.Changes() {
		ids = append(ids, c.ID())
	}
	if got, want := strings.Join(ids, " "), "1 2 3 4 5 6 7 8 9 10 11"; got != want {
		t.Errorf("got ids %q, want %q", got, want)
	}
}

func TestPruneAndChangesInProgress(t *testing.T) {
	st, path := openTemp(t)
	st.Lock()
	var cs []*Change
	var ts []*Task
	for i := range 6 {
		cs = append(cs, st.NewChange("k", fmt.Sprint("change ", i+1)))
		ts = append(ts, st.NewTask("k", "K"))
		cs[i].AddTask(ts[i])
	}
	for _, i := range []int{0, 1, 3, 4} { // changes 3 and 6 stay in progress
		ts[i].SetStatus(DoneStatus)
	}
	ts[2].WaitFor(ts[0]) // change 3, in progress, waits for change 1
	ts[4].WaitFor(ts[1]) // change 5, ready, waited for change 2
	st.NewTask("orphan", "Never added")
	st.Prune(1)
	st.Unlock()

	st = reopen(t, path) // also checks that no dangling reference was left
	st.Lock()
	defer st.Unlock()
	var got []string
	for _, c := range st.Changes() {
		got = append(got, c.ID())
	}
	if got, want := strings.Join(got, " "), "1 3 5 6"; got != want {
		t.Errorf("got changes %q after Prune, want %q", got, want)
	}
	if got := st.Task("2"); got != nil {
		t.Errorf("got task 2 of a pruned change, want it dropped")
	}
	if got := st.Task("7"); got != nil {
		t.Errorf("got the orphan task, want it dropped")
	}
	var ids []string
	for _, c := range st.ChangesInProgress() {
		ids = append(ids, c.ID())
	}
	if got, want := strings.Join(ids, " "), "3 6"; got != want {
		t.Errorf("got changes in progress %q, want %q", got, want)
	}
}

func TestStatusJSON(t *testing.T) {
	for s := DoStatus; s < statusCount; s++ {
		raw, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if want := `"` + s.String() + `"`; string(raw) != want {
			t.Errorf("got %s, want %s", raw, want)
		}
		var back Status
		if err := json.Unmarshal(raw, &back); err != nil || back != s {
			t.Errorf("got %s (error %v) back from %s, want %s", back, err, raw, s)
		}
	}
	if _, err := json.Marshal(Status(42)); err == nil {
		t.Errorf("got no error marshalling Status(42), want one")
	}
}
