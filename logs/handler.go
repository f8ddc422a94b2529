package logs

import (
	"context"
	"log/slog"

	silo "github.com/silo-run/silo"
)

// Handler returns an slog.Handler that appends each record to the log of
// the account named by its "account" attribute, taking its "function" and
// "request_id" attributes into the Entry's fields and every other attribute
// into Attrs. Records without a valid account are dropped: a log line that
// names no account belongs to no tenant. Groups are flattened with dots.
// Records below min are dropped (nil keeps every level). Records are
// queued and written in batches (see the package doc); Handle returns
// without waiting for the write.
func (s *Store) Handler(min slog.Leveler) slog.Handler {
	if min == nil {
		min = slog.LevelDebug - 4
	}
	return &handler{s: s, min: min}
}

type handler struct {
	s      *Store
	min    slog.Leveler
	attrs  []slog.Attr
	prefix string
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min.Level() }

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	e := Entry{Time: r.Time, Level: LevelString(r.Level), Msg: r.Message}
	add := func(prefix string, a slog.Attr) {
		h.put(&e, prefix, a)
	}
	for _, a := range h.attrs {
		add("", a)
	}
	r.Attrs(func(a slog.Attr) bool { add(h.prefix, a); return true })
	if _, err := silo.ParseID(string(e.Account)); err != nil {
		return nil
	}
	return h.s.enqueue(e)
}

func (h *handler) put(e *Entry, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			h.put(e, p, g)
		}
		return
	}
	key := prefix + a.Key
	switch key {
	case "account":
		e.Account = silo.AccountID(v.String())
		return
	case "function":
		e.Function = v.String()
		return
	case "request_id":
		e.RequestID = v.String()
		return
	}
	if e.Attrs == nil {
		e.Attrs = map[string]string{}
	}
	e.Attrs[key] = v.String()
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), prefixed(h.prefix, as)...)
	return &n
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.prefix = h.prefix + name + "."
	return &n
}

func prefixed(prefix string, as []slog.Attr) []slog.Attr {
	if prefix == "" {
		return as
	}
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = slog.Attr{Key: prefix + a.Key, Value: a.Value}
	}
	return out
}
