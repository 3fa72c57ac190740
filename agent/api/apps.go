package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/appmgr"
)

// maxAssertions bounds the assertions part of an upload.
const maxAssertions = 1 << 20

func (s *Server) getApps(w http.ResponseWriter, r *http.Request) {
	apps := s.apps.List()
	for i := range apps {
		s.addHealth(&apps[i])
	}
	syncResponse(w, apps)
}

// addHealth fills in the app's health, when the agent keeps it.
func (s *Server) addHealth(a *apitypes.AppInfo) {
	if s.Health != nil {
		a.Health = s.Health(a.Name)
	}
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request) {
	info, err := s.apps.Info(r.PathValue("name"))
	if err != nil {
		managerError(w, err)
		return
	}
	s.addHealth(&info)
	syncResponse(w, info)
}

// postApps installs or refreshes an app from a multipart upload: a part
// named "assertions" (the .pdk.assert bundle) followed by a part named
// "package" (the .pdk), which is verified as it streams in. The query
// parameter action=refresh refuses apps that are not installed yet.
func (s *Server) postApps(w http.ResponseWriter, r *http.Request) {
	// A package may take longer than readTimeout to stream in: the
	// deadlines move on while data comes, so only a stalled upload ends.
	rc := http.NewResponseController(w)
	r.Body = &progressBody{ReadCloser: r.Body, rc: rc}
	mr, err := multipartReader(r)
	if err != nil {
		errorResponse(w, http.StatusBadRequest, "bad-request", err)
		return
	}
	bundle, err := readPart(mr, "assertions", maxAssertions)
	if err != nil {
		errorResponse(w, http.StatusBadRequest, "bad-request", err)
		return
	}
	pkg, err := mr.NextPart()
	if err != nil || pkg.FormName() != "package" {
		errorResponse(w, http.StatusBadRequest, "bad-request", errors.New("upload lacks the package part"))
		return
	}
	opts := appmgr.InstallOptions{Refresh: r.URL.Query().Get("action") == "refresh"}
	id, err := s.apps.Install(bundle, pkg, opts)
	rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err != nil {
		managerError(w, err)
		return
	}
	asyncResponse(w, id)
}

func multipartReader(r *http.Request) (*multipart.Reader, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, errors.New("want a multipart/form-data upload with assertions and package parts")
	}
	return multipart.NewReader(r.Body, params["boundary"]), nil
}

func readPart(mr *multipart.Reader, name string, max int64) ([]byte, error) {
	p, err := mr.NextPart()
	if err != nil {
		return nil, fmt.Errorf("upload lacks the %s part: %w", name, err)
	}
	if p.FormName() != name {
		return nil, fmt.Errorf("upload part %q came where %q was expected", p.FormName(), name)
	}
	b, err := io.ReadAll(io.LimitReader(p, max+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the %s part: %w", name, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("the %s part is larger than %d bytes", name, max)
	}
	return b, nil
}

// progressBody moves the read and write deadlines of its request on by
// uploadStall whenever data comes in.
type progressBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	last time.Time
}

func (b *progressBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if now := time.Now(); n > 0 && now.Sub(b.last) >= uploadStall/8 {
		b.last = now
		b.rc.SetReadDeadline(now.Add(uploadStall))
		b.rc.SetWriteDeadline(now.Add(uploadStall + writeTimeout))
	}
	return n, err
}

// appAction is the body of POST /v1/apps/{name}.
type appAction struct {
	Action string `json:"action"`
}

func (s *Server) postApp(w http.ResponseWriter, r *http.Request) {
	var a appAction
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&a); err != nil {
		errorResponse(w, http.StatusBadRequest, "bad-request", fmt.Errorf("cannot decode request: %w", err))
		return
	}
	name := r.PathValue("name")
	var id string
	var err error
	switch a.Action {
	case "revert":
		id, err = s.apps.Revert(name)
	case "remove":
		id, err = s.apps.Remove(name)
	default:
		errorResponse(w, http.StatusBadRequest, "bad-request", fmt.Errorf("unknown action %q (want revert or remove)", a.Action))
		return
	}
	if err != nil {
		managerError(w, err)
		return
	}
	asyncResponse(w, id)
}
