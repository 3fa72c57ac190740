// Command badinit is the init of a broken base for the base-update tests
// (vm_basetry_test.go): installed as a base's /usr/bin/paddock, it is what
// stage 1 executes as PID 1 of the tried base. Built with
// -X main.mode=panic it panics (PID 1 exits: the kernel panics); with
// mode=hang it hangs without ever petting the watchdog.
package main

import (
	"fmt"
	"time"
)

var mode = "panic"

func main() {
	fmt.Println("badinit: this base's init is broken on purpose:", mode)
	if mode == "hang" {
		for {
			time.Sleep(time.Hour)
		}
	}
	panic("badinit: the tried base's init panics")
}
