package rules

import (
	"strings"
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	berlin, err := loadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("Mon 2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		spec string
		in   []string
		out  []string
	}{
		{"Mon-Fri 09:00-18:00",
			[]string{"Mon 2026-01-05 09:00", "Fri 2026-01-09 17:59"},
			[]string{"Mon 2026-01-05 08:59", "Mon 2026-01-05 18:00", "Sat 2026-01-10 12:00", "Sun 2026-01-11 12:00"}},
		{"Mon-Fri 09:00-12:00,13:00-18:00; Sat 10:00-14:00",
			[]string{"Wed 2026-01-07 11:59", "Wed 2026-01-07 13:00", "Sat 2026-01-10 10:00"},
			[]string{"Wed 2026-01-07 12:30", "Sat 2026-01-10 14:00", "Sun 2026-01-11 11:00"}},
		{"mon,wed,FRI 08:00-09:00",
			[]string{"Mon 2026-01-05 08:30", "Fri 2026-01-09 08:00"},
			[]string{"Tue 2026-01-06 08:30"}},
		{"Fri-Mon 10:00-11:00", // wraps around the week
			[]string{"Sat 2026-01-10 10:30", "Sun 2026-01-11 10:30", "Mon 2026-01-12 10:30"},
			[]string{"Tue 2026-01-06 10:30"}},
		{"Fri 22:00-02:00", // crosses midnight: Friday night
			[]string{"Fri 2026-01-09 23:00", "Sat 2026-01-10 01:59"},
			[]string{"Sat 2026-01-10 02:00", "Fri 2026-01-09 01:00", "Sat 2026-01-10 23:00"}},
		{"daily 00:00-24:00", []string{"Sun 2026-01-11 23:59"}, nil},
		{"10:00-16:00", []string{"Sun 2026-01-11 10:00"}, []string{"Sun 2026-01-11 16:00"}},
		{"Monday-Friday 09:00-17:00", []string{"Thu 2026-01-08 09:00"}, nil},
	} {
		s, err := parseSchedule(tc.spec)
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		for _, x := range tc.in {
			if !s.contains(at(x)) {
				t.Errorf("%q: %s should be inside", tc.spec, x)
			}
		}
		for _, x := range tc.out {
			if s.contains(at(x)) {
				t.Errorf("%q: %s should be outside", tc.spec, x)
			}
		}
	}
}

func TestBadSchedules(t *testing.T) {
	for spec, want := range map[string]string{
		"":                    "no window",
		"Mon-Fri":             "not a time range",
		"Mon-Fri 9-17":        `"9" is not a time of day`,
		"Mon-Fry 09:00-17:00": `"fry" is not a day`,
		"Mon 09:00-09:00":     "empty time range",
		"Mon 24:00-25:00":     `"24:00" is not a time of day`,
		"Mon 09:60-10:00":     `"09:60" is not a time of day`,
		"Mon 9:00-10:00":      "", // one-digit hours are fine
	} {
		_, err := parseSchedule(spec)
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", spec, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", spec, err, want)
		}
	}
}
