package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// QMP is a connection to QEMU's machine protocol (Config.QMP), for
// plugging devices in and out of a running guest as a person would plug
// them into a board.
type QMP struct {
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
}

// maxQMPLine bounds one message from QEMU.
const maxQMPLine = 1 << 20

// DialQMP connects to the QMP socket at path, waiting for QEMU to create
// it until ctx ends, and leaves the capabilities negotiation.
func DialQMP(ctx context.Context, path string) (*QMP, error) {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			q := &QMP{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
			if err := q.greet(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			return q, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cannot connect to QMP at %s: %w", path, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (q *QMP) greet(ctx context.Context) error {
	q.deadline(ctx)
	var hello struct {
		QMP json.RawMessage `json:"QMP"`
	}
	line, err := q.readLine()
	if err != nil {
		return fmt.Errorf("cannot read QMP greeting: %w", err)
	}
	if json.Unmarshal(line, &hello) != nil || hello.QMP == nil {
		return errors.New("cannot read QMP greeting: not QMP")
	}
	_, err = q.execute(ctx, "qmp_capabilities", nil)
	return err
}

// Execute runs command with arguments (nil for none) and returns what it
// returned; an error from QEMU becomes an error naming its class.
func (q *QMP) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.execute(ctx, command, args)
}

func (q *QMP) execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	q.deadline(ctx)
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	for {
		line, err := q.readLine()
		if err != nil {
			return nil, fmt.Errorf("qmp %s: %w", command, err)
		}
		var reply struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line, &reply); err != nil {
			return nil, fmt.Errorf("qmp %s: invalid reply", command)
		}
		switch {
		case reply.Error != nil:
			return nil, fmt.Errorf("qmp %s: %s: %s", command, reply.Error.Class, reply.Error.Desc)
		case reply.Return != nil:
			return reply.Return, nil
		}
		// An event ({"event": ...}) comes between: skip it.
	}
}

func (q *QMP) deadline(ctx context.Context) {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(30 * time.Second)
	}
	q.conn.SetDeadline(d)
}

func (q *QMP) readLine() ([]byte, error) {
	var line []byte
	for {
		part, more, err := q.r.ReadLine()
		if err != nil {
			return nil, err
		}
		line = append(line, part...)
		if len(line) > maxQMPLine {
			return nil, errors.New("reply too long")
		}
		if !more {
			return line, nil
		}
	}
}

// AddFileChardev adds a character device id that writes to the host file
// path, for a device to use (a USB serial adapter's line).
func (q *QMP) AddFileChardev(ctx context.Context, id, path string) error {
	_, err := q.Execute(ctx, "chardev-add", map[string]any{
		"id":      id,
		"backend": map[string]any{"type": "file", "data": map[string]any{"out": path}},
	})
	return err
}

// DeviceAdd plugs in a device: driver (like usb-serial) with id and the
// driver's properties.
func (q *QMP) DeviceAdd(ctx context.Context, driver, id string, props map[string]any) error {
	args := map[string]any{"driver": driver, "id": id}
	for k, v := range props {
		args[k] = v
	}
	_, err := q.Execute(ctx, "device_add", args)
	return err
}

// DeviceDel asks for the device id to be unplugged; the guest sees it go
// shortly after (QEMU says DEVICE_DELETED once it is gone).
func (q *QMP) DeviceDel(ctx context.Context, id string) error {
	_, err := q.Execute(ctx, "device_del", map[string]any{"id": id})
	return err
}

// Close closes the connection.
func (q *QMP) Close() error { return q.conn.Close() }
