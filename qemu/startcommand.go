package qemu

import "context"

// StartCommand is Start for a boot that runs command once the agent is
// ready (paddock.cmd, as RunCommand does), for callers that watch the
// console and cut the power while the command runs. The caller must call
// Wait (or PowerCut then Wait).
func StartCommand(ctx context.Context, c Config, command string) (*VM, error) {
	c, err := withCommand(c, command)
	if err != nil {
		return nil, err
	}
	return Start(ctx, c)
}
