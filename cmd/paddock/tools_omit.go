//go:build paddock_omit_tools

package main

// toolCommands is empty in a device build (-tags paddock_omit_tools): the
// operator's and developer's tools stay out of the binary.
var toolCommands []group
