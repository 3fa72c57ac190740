package apitypes

// BaseSlot is one base slot in a BaseStatus.
type BaseSlot struct {
	Name string `json:"name"` // "a" or "b"
	// State is good, try, trying, writing, bad or other (boot.State*).
	State   string `json:"state"`
	Why     string `json:"why,omitempty"`
	Running bool   `json:"running,omitempty"`
	// Base, Version and Revision are those of the slot's base-revision,
	// when the device keeps one.
	Base     string `json:"base,omitempty"`
	Version  string `json:"version,omitempty"`
	Revision int    `json:"revision,omitempty"`
}

// BaseAttempt is the last try of a base: its slot, how it ended (trying,
// committed, failed), why it failed, and what the operator should do
// about it (boot.Attempt.Advice).
type BaseAttempt struct {
	Slot   string `json:"slot,omitempty"`
	Result string `json:"result,omitempty"`
	Reason string `json:"reason,omitempty"`
	Boots  int    `json:"boots,omitempty"`
	Advice string `json:"advice,omitempty"`
}

// BaseStatus is what GET /v1/base answers and 'paddock base status' shows.
type BaseStatus struct {
	Running  string      `json:"running"`
	Tried    bool        `json:"tried,omitempty"`
	Verified bool        `json:"verified"`
	Slots    []BaseSlot  `json:"slots"`
	Last     BaseAttempt `json:"last"`
	// Fallback says why this boot runs another slot than the boot rule
	// chose; Unverified why the base is not checked by dm-verity.
	Fallback   string `json:"fallback,omitempty"`
	Unverified string `json:"unverified,omitempty"`
}

// BaseUpdateRequest is the body of POST /v1/base: a slot image on the
// device (File) or its mirrors (URLs), its base-revision bundle, and when
// to reboot ("now", "never" or a daily UTC window "HH:MM-HH:MM").
type BaseUpdateRequest struct {
	File       string   `json:"file,omitempty"`
	URLs       []string `json:"urls,omitempty"`
	Assertions string   `json:"assertions"`
	Reboot     string   `json:"reboot,omitempty"`
}
