package client

import (
	"fmt"
	"io"
	"mime/multipart"
	"net/url"
	"os"
)

// Install uploads the package at pdk with the assertion bundle at assertions
// and starts installing it (or refreshing, with refresh set); it returns the
// change id. The package streams from the file: it is never held in memory.
func (c *Client) Install(pdk, assertions string, refresh bool) (string, error) {
	bundle, err := os.ReadFile(assertions)
	if err != nil {
		return "", fmt.Errorf("cannot read assertions: %w (sign the package with 'paddock sign', or name the file with --assert)", err)
	}
	f, err := os.Open(pdk)
	if err != nil {
		return "", fmt.Errorf("cannot read package: %w", err)
	}
	defer f.Close()

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeUpload(mw, bundle, f))
	}()
	q := url.Values{}
	if refresh {
		q.Set("action", "refresh")
	}
	id, err := c.do("POST", "/v1/apps", q, mw.FormDataContentType(), pr, nil)
	pr.Close()
	return id, err
}

func writeUpload(mw *multipart.Writer, bundle []byte, pkg io.Reader) error {
	w, err := mw.CreateFormField("assertions")
	if err != nil {
		return err
	}
	if _, err := w.Write(bundle); err != nil {
		return err
	}
	w, err = mw.CreateFormFile("package", "package.pdk")
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(w, pkg, make([]byte, 1<<20)); err != nil {
		return err
	}
	return mw.Close()
}
