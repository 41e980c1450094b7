package pipeline

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/wildcathub/wildcat/core/event"
)

// The builtin stage kinds: small, dependency-free handlers for demos, tests
// and simple configurations without a rule file.
//
//	builtin: tag       config: {tag: vip}             adds a tag
//	builtin: annotate  config: {key: team, value: x}  sets an annotation
//	builtin: reply     config: {text: "Thanks!"}      replies to the chat
//	builtin: drop      (no config)                    stops matching events
//	builtin: log       config: {level: info}          logs each event
func registerBuiltins(r *Registry) {
	r.RegisterBuiltin("tag", func(st StageConfig) (InlineHandler, error) {
		tag, err := configString(st, "tag")
		if err != nil {
			return nil, err
		}
		return actions(Tag(tag)), nil
	})
	r.RegisterBuiltin("annotate", func(st StageConfig) (InlineHandler, error) {
		key, err := configString(st, "key")
		if err != nil {
			return nil, err
		}
		value, _ := st.Config["value"].(string)
		return actions(Annotate(map[string]string{key: value})), nil
	})
	r.RegisterBuiltin("reply", func(st StageConfig) (InlineHandler, error) {
		text, err := configString(st, "text")
		if err != nil {
			return nil, err
		}
		return HandlerFunc(func(ctx context.Context, ev *event.Event) ([]Action, error) {
			return []Action{Reply(text)}, nil
		}), nil
	})
	r.RegisterBuiltin("drop", func(st StageConfig) (InlineHandler, error) {
		return actions(Drop()), nil
	})
	r.RegisterBuiltin("log", func(st StageConfig) (InlineHandler, error) {
		var level slog.Level
		if s, ok := st.Config["level"].(string); ok {
			if err := level.UnmarshalText([]byte(s)); err != nil {
				return nil, fmt.Errorf("config.level: %w", err)
			}
		}
		log := slog.Default().With(slog.String("component", "pipeline"), slog.String("stage", st.Name))
		return HandlerFunc(func(ctx context.Context, ev *event.Event) ([]Action, error) {
			log.Log(ctx, level, "event", slog.String("event_id", ev.ID), slog.String("kind", string(ev.Kind)),
				slog.String("account", ev.AccountID), slog.String("chat", ev.ChatID))
			return nil, nil
		}), nil
	})
}

func actions(a ...Action) InlineHandler {
	return HandlerFunc(func(ctx context.Context, ev *event.Event) ([]Action, error) { return a, nil })
}

func configString(st StageConfig, key string) (string, error) {
	s, ok := st.Config[key].(string)
	if !ok || s == "" {
		return "", fmt.Errorf("builtin %s needs config.%s (a string)", st.Builtin, key)
	}
	return s, nil
}
