// Package debuglog is jitform's TF_LOG: JITFORM_LOG=debug or trace sends one
// structured line per LDAP operation and WinRM request to stderr, with its
// timing and result, never a secret. Off (the default) it costs one nil check.
package debuglog

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"time"
)

// LevelTrace is below slog's debug: request details (filters, member values).
const LevelTrace = slog.Level(-8)

// EnvVar names the setting.
const EnvVar = "JITFORM_LOG"

// New returns the logger for a JITFORM_LOG value, or nil when logging is off
// or the value is not a level. "json" may follow a comma: debug,json.
func New(setting string, w io.Writer) *slog.Logger {
	level, format, _ := strings.Cut(strings.ToLower(strings.TrimSpace(setting)), ",")
	var lv slog.Level
	switch level {
	case "debug":
		lv = slog.LevelDebug
	case "trace":
		lv = LevelTrace
	default:
		return nil
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.LevelKey && a.Value.Any() == LevelTrace {
			return slog.String(slog.LevelKey, "TRACE")
		}
		return a
	}}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Op logs one finished operation at debug: what, how long, and its result
// ("ok" or the error's text, which callers have already scrubbed).
func Op(ctx context.Context, log *slog.Logger, msg string, start time.Time, err error, attrs ...slog.Attr) {
	if log == nil || !log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs = append(attrs, slog.Duration("took", time.Since(start).Round(time.Microsecond)))
	if err != nil {
		attrs = append(attrs, slog.String("result", err.Error()))
	} else {
		attrs = append(attrs, slog.String("result", "ok"))
	}
	log.LogAttrs(ctx, slog.LevelDebug, msg, attrs...)
}

// Tracing reports whether trace-level details should be gathered.
func Tracing(ctx context.Context, log *slog.Logger) bool {
	return log != nil && log.Enabled(ctx, LevelTrace)
}
