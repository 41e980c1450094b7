package rules

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	_ "time/tzdata" // zones must load on machines without a tz database
)

// schedule is a parsed business-hours spec: per weekday (time.Sunday = 0),
// the minute ranges [from, to) it covers. A window crossing midnight
// ("Fri 22:00-02:00") belongs to the day it starts on and is split into
// that day's evening and the next day's early hours.
type schedule [7][]minuteRange

type minuteRange struct{ from, to int }

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// parseSchedule reads specs such as
//
//	"Mon-Fri 09:00-18:00"
//	"Mon-Fri 09:00-12:00,13:00-18:00; Sat 10:00-14:00"
//	"Mon,Wed,Fri 08:00-12:00"   "daily 22:00-06:00"   "10:00-16:00" (every day)
func parseSchedule(spec string) (*schedule, error) {
	var s schedule
	found := false
	for _, window := range strings.Split(spec, ";") {
		window = strings.TrimSpace(window)
		if window == "" {
			continue
		}
		days := [7]bool{true, true, true, true, true, true, true}
		ranges := window
		if dayPart, rest, ok := strings.Cut(window, " "); ok {
			var err error
			if days, err = parseDays(dayPart); err != nil {
				return nil, fmt.Errorf("%q: %w", window, err)
			}
			ranges = strings.TrimSpace(rest)
		}
		for _, r := range strings.Split(ranges, ",") {
			from, to, err := parseRange(strings.TrimSpace(r))
			if err != nil {
				return nil, fmt.Errorf("%q: %w", window, err)
			}
			for d := range 7 {
				if !days[d] {
					continue
				}
				if to > from {
					s[d] = append(s[d], minuteRange{from, to})
				} else { // crosses midnight
					s[d] = append(s[d], minuteRange{from, 24 * 60})
					next := (d + 1) % 7
					s[next] = append(s[next], minuteRange{0, to})
				}
			}
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("no window (write e.g. \"Mon-Fri 09:00-18:00\")")
	}
	return &s, nil
}

func parseDays(part string) ([7]bool, error) {
	var days [7]bool
	switch strings.ToLower(part) {
	case "daily", "*":
		return [7]bool{true, true, true, true, true, true, true}, nil
	}
	for _, item := range strings.Split(part, ",") {
		first, last, isRange := strings.Cut(item, "-")
		a, err := parseDay(first)
		if err != nil {
			return days, err
		}
		b := a
		if isRange {
			if b, err = parseDay(last); err != nil {
				return days, err
			}
		}
		// Ranges wrap around the week: "Fri-Mon" is Fri, Sat, Sun, Mon.
		for d := a; ; d = (d + 1) % 7 {
			days[d] = true
			if d == b {
				break
			}
		}
	}
	return days, nil
}

func parseDay(s string) (time.Weekday, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) >= 3 {
		if d, ok := dayNames[s[:3]]; ok && strings.HasPrefix(strings.ToLower(d.String()), s) {
			return d, nil
		}
	}
	return 0, fmt.Errorf("%q is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges like Mon-Fri, lists like Mon,Wed, or daily)", s)
}

func parseRange(s string) (from, to int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok || s == "" || s[0] < '0' || s[0] > '9' {
		return 0, 0, fmt.Errorf("%q is not a time range like 09:00-18:00", s)
	}
	if from, err = parseClock(a, false); err != nil {
		return 0, 0, err
	}
	if to, err = parseClock(b, true); err != nil {
		return 0, 0, err
	}
	if from == to {
		return 0, 0, fmt.Errorf("%q is an empty time range", s)
	}
	return from, to, nil
}

// parseClock reads HH:MM as minutes since midnight; 24:00 is accepted as
// the end of a range.
func parseClock(s string, end bool) (int, error) {
	s = strings.TrimSpace(s)
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && (mm != 0 || !end)) {
		return 0, fmt.Errorf("%q is not a time of day like 09:00", s)
	}
	return hh*60 + mm, nil
}

func (s *schedule) contains(t time.Time) bool {
	min := t.Hour()*60 + t.Minute()
	for _, r := range s[t.Weekday()] {
		if min >= r.from && min < r.to {
			return true
		}
	}
	return false
}

// Specs are literals in rule files, so a small cache makes within() cost a
// map lookup; the bound keeps a rule that builds specs dynamically from
// growing it without limit.
var (
	scheduleCache sync.Map // string → *schedule
	scheduleCount atomic.Int32
	locationCache sync.Map // string → *time.Location
)

const maxCachedSchedules = 512

func cachedSchedule(spec string) (*schedule, error) {
	if s, ok := scheduleCache.Load(spec); ok {
		return s.(*schedule), nil
	}
	s, err := parseSchedule(spec)
	if err != nil {
		return nil, err
	}
	if scheduleCount.Add(1) <= maxCachedSchedules {
		scheduleCache.Store(spec, s)
	}
	return s, nil
}

func loadLocation(name string) (*time.Location, error) {
	if name == "" {
		return nil, fmt.Errorf("empty time zone name (use e.g. Europe/Berlin or UTC)")
	}
	if l, ok := locationCache.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (use an IANA name such as Europe/Berlin)", name)
	}
	locationCache.Store(name, l)
	return l, nil
}
