package loopmount

import (
	"strconv"
	"strings"
)

// parseMountinfo parses the text of /proc/PID/mountinfo (see proc(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// Lines it cannot read are skipped.
func parseMountinfo(text string) []Mount {
	var mounts []Mount
	for line := range strings.SplitSeq(text, "\n") {
		fields := strings.Fields(line)
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 6 || len(fields) < sep+3 {
			continue
		}
		mounts = append(mounts, Mount{
			Dir:     unescape(fields[4]),
			Options: fields[5],
			FSType:  fields[sep+1],
			Source:  unescape(fields[sep+2]),
		})
	}
	return mounts
}

// unescape undoes the octal escapes (\040 for a space) of mountinfo fields.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
