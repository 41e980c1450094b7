package daemon_test

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The end-to-end figures drawn for the README: throughput beside the raw
// limit, and latency beside its target, one pair of bars per engine.
var (
	ours  = color.RGBA{R: 0xd9, G: 0x5f, B: 0x0e, A: 0xff}
	limit = color.RGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff}
	p99   = color.RGBA{R: 0x8c, G: 0x2d, B: 0x04, A: 0xff}
)

// Targets of the throughput issue on the embedded engine.
const (
	targetDeliveredPerSec = 5000
	targetP99Ms           = 50
)

// drawBenchChart writes figs as a PNG chart to path.
func drawBenchChart(figs []e2eFigures, path string) error {
	names := make([]string, len(figs))
	delivered, raw := make(plotter.Values, len(figs)), make(plotter.Values, len(figs))
	p50s, p99s := make(plotter.Values, len(figs)), make(plotter.Values, len(figs))
	for i, f := range figs {
		names[i] = f.Engine
		delivered[i], raw[i] = f.DeliveredPerSec, f.RawPostsPerSec
		p50s[i], p99s[i] = f.LatencyP50Ms, f.LatencyP99Ms
	}

	tp := plot.New()
	tp.Title.Text = fmt.Sprintf("Delivered events/s (REST → store → rules → webhook), %d CPUs", figs[0].CPUs)
	tp.Y.Label.Text = "events/s"
	if err := bars(tp, names, []series{{"end to end", delivered, ours}, {"raw signed POSTs to the receiver", raw, limit}}); err != nil {
		return err
	}
	if err := hline(tp, targetDeliveredPerSec, "target (sqlite)", len(names)); err != nil {
		return err
	}

	// Latency spans milliseconds to seconds across engines: points on a
	// log scale, not bars.
	lp := plot.New()
	lp.Title.Text = "Intake → receiver latency at 1,000 events/s offered"
	lp.Y.Label.Text = "ms (log scale)"
	lp.Y.Scale = plot.LogScale{}
	lp.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	lp.NominalX(names...)
	lp.X.Min, lp.X.Max = -0.5, float64(len(names))-0.5
	top := float64(targetP99Ms)
	for _, s := range []series{{"p50", p50s, ours}, {"p99", p99s, p99}} {
		pts := make(plotter.XYs, len(s.values))
		for i, v := range s.values {
			pts[i] = plotter.XY{X: float64(i), Y: max(v, 0.1)}
			top = max(top, v)
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Color, sc.GlyphStyle.Radius, sc.GlyphStyle.Shape = s.color, vg.Points(6), draw.CircleGlyph{}
		lp.Add(sc)
		lp.Legend.Add(s.label, sc)
		if err := valueLabels(lp, pts, "%.1f"); err != nil {
			return err
		}
	}
	lp.Y.Min, lp.Y.Max = 0.1, top*10
	lp.Legend.Top = true
	if err := hline(lp, targetP99Ms, "p99 target (sqlite)", len(names)); err != nil {
		return err
	}

	const w, h = 12 * vg.Inch, 4.5 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Inch / 4, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	canvases := plot.Align([][]*plot.Plot{{tp, lp}}, tiles, dc)
	tp.Draw(canvases[0][0])
	lp.Draw(canvases[0][1])
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

type series struct {
	label  string
	values plotter.Values
	color  color.Color
}

// bars adds one group of bars per name, one bar per series.
func bars(p *plot.Plot, names []string, ss []series) error {
	width := vg.Points(40)
	top := 0.0
	for i, s := range ss {
		b, err := plotter.NewBarChart(s.values, width)
		if err != nil {
			return err
		}
		b.Color = s.color
		b.LineStyle.Width = 0
		b.Offset = width * vg.Length(float64(i)-float64(len(ss)-1)/2)
		p.Add(b)
		p.Legend.Add(s.label, b)
		// The value above each bar: a small one stays readable beside a
		// large one.
		pts := make(plotter.XYs, len(s.values))
		for j, v := range s.values {
			pts[j] = plotter.XY{X: float64(j), Y: v}
			top = max(top, v)
		}
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: formatAll(s.values, "%.0f")})
		if err != nil {
			return err
		}
		for j := range lb.TextStyle {
			lb.TextStyle[j].XAlign = draw.XCenter
		}
		lb.Offset = vg.Point{X: b.Offset, Y: vg.Points(3)}
		p.Add(lb)
	}
	p.Legend.Top = true
	p.NominalX(names...)
	// Room above the tallest bar for its label and the legend.
	p.Y.Min, p.Y.Max = 0, top*1.4
	p.Y.Tick.Marker = plot.TickerFunc(func(min, max float64) []plot.Tick {
		ts := plot.DefaultTicks{}.Ticks(min, max)
		for i := range ts {
			if ts[i].Label != "" {
				ts[i].Label = fmt.Sprintf("%.0f", ts[i].Value)
			}
		}
		return ts
	})
	return nil
}

// valueLabels writes each point's value beside it.
func valueLabels(p *plot.Plot, pts plotter.XYs, format string) error {
	vals := make(plotter.Values, len(pts))
	for i, pt := range pts {
		vals[i] = pt.Y
	}
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: formatAll(vals, format)})
	if err != nil {
		return err
	}
	lb.Offset = vg.Point{X: vg.Points(9), Y: -vg.Points(4)}
	p.Add(lb)
	return nil
}

func formatAll(vals plotter.Values, format string) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = fmt.Sprintf(format, v)
	}
	return out
}

// hline draws a dashed line at y across the groups.
func hline(p *plot.Plot, y float64, label string, groups int) error {
	l, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: y}, {X: float64(groups) - 0.5, Y: y}})
	if err != nil {
		return err
	}
	l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	l.Color = color.Black
	p.Add(l)
	p.Legend.Add(label, l)
	if p.Y.Max < y*1.4 {
		p.Y.Max = y * 1.4
	}
	return nil
}
