// Package gnetlog routes gnet's own log messages to slog, so that a gnet engine (the proxy's server, replay's
// client) writes nothing of its own to stderr: gnet's informational messages go to debug, its warnings and
// errors keep their level.
package gnetlog

import (
	"fmt"
	"log/slog"
)

// Logger implements gnet's logging.Logger over an slog.Logger.
type Logger struct{ L *slog.Logger }

func (g Logger) Debugf(format string, args ...any) { g.L.Debug(fmt.Sprintf(format, args...)) }
func (g Logger) Infof(format string, args ...any)  { g.L.Debug(fmt.Sprintf(format, args...)) }
func (g Logger) Warnf(format string, args ...any)  { g.L.Warn(fmt.Sprintf(format, args...)) }
func (g Logger) Errorf(format string, args ...any) { g.L.Error(fmt.Sprintf(format, args...)) }
func (g Logger) Fatalf(format string, args ...any) { g.L.Error(fmt.Sprintf(format, args...)) }
