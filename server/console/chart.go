package console

import "fmt"

// Chart is a bar chart drawn as inline SVG by the page's template: no
// script and nothing loaded, so it shows without JavaScript. Coordinates
// are in the SVG's own units (Width × Height).
type Chart struct {
	Title         string
	Summary       string // what the chart says in words (the SVG's label)
	Width, Height int
	Bars          []Bar
	Grid          []GridLine
	First, Last   string // the first and last day, under the axis
	PlotLeft      int
	PlotBottom    int
	Empty         bool // no value above zero: the template says so
}

// Bar is one day's bar; Over, if non-zero, is drawn over it (errors over
// requests).
type Bar struct {
	X, Y, W, H float64
	OverY      float64
	OverH      float64
	Label      string // day and value, shown on hover
}

// GridLine is a horizontal line with its value.
type GridLine struct {
	Y     float64
	Label string
}

// barChart draws values (one per day) with over drawn on top of them (nil
// for none). format writes a value for labels.
func barChart(title string, days []string, values, over []float64, format func(float64) string) Chart {
	const w, h, left, right, top, bottom = 560, 180, 64, 8, 10, 24
	c := Chart{Title: title, Width: w, Height: h, PlotLeft: left, PlotBottom: h - bottom}
	var peak, total float64
	for _, v := range values {
		peak = max(peak, v)
		total += v
	}
	if len(days) > 0 {
		c.First, c.Last = days[0], days[len(days)-1]
	}
	c.Summary = fmt.Sprintf("%s, %s to %s: total %s, highest day %s", title, c.First, c.Last, format(total), format(peak))
	plotH := float64(h - top - bottom)
	if peak == 0 {
		c.Empty = true
		c.Grid = []GridLine{{Y: float64(h - bottom), Label: format(0)}}
		return c
	}
	scale := niceCeil(peak)
	for i := 0; i <= 2; i++ {
		v := scale * float64(i) / 2
		c.Grid = append(c.Grid, GridLine{Y: float64(h-bottom) - plotH*v/scale, Label: format(v)})
	}
	step := float64(w-left-right) / float64(len(values))
	for i, v := range values {
		bh := plotH * v / scale
		b := Bar{X: float64(left) + float64(i)*step + step*0.15, W: step * 0.7, H: bh, Y: float64(h-bottom) - bh,
			Label: days[i] + ": " + format(v)}
		if over != nil && over[i] > 0 {
			b.OverH = plotH * over[i] / scale
			b.OverY = float64(h-bottom) - b.OverH
			b.Label += " (errors " + format(over[i]) + ")"
		}
		c.Bars = append(c.Bars, b)
	}
	return c
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := 1e-6
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
