package main

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
)

// series is one line of a chart.
type series struct {
	name   string
	color  string
	dashed bool
	points [][2]float64
}

// panel is one chart: lines over a rate axis, latency up.
type panel struct {
	title, xLabel, yLabel string
	logX, logY            bool
	series                []series
	// hline, when set, draws a horizontal reference line (the SLO).
	hline      float64
	hlineLabel string
}

const (
	panelW, panelH = 560, 380
	marginL        = 64
	marginR        = 16
	marginT        = 36
	marginB        = 48
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"}

// chartSVG draws the panels side by side, each with its legend below it.
func chartSVG(title string, panels []panel) string {
	legendH := 0
	for _, p := range panels {
		legendH = max(legendH, 18*len(p.series)+10)
	}
	w, h := panelW*len(panels), panelH+legendH+30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="15" text-anchor="middle">%s</text>`+"\n", w/2, html.EscapeString(title))
	for i, p := range panels {
		fmt.Fprintf(&b, `<g transform="translate(%d,24)">`+"\n", i*panelW)
		p.draw(&b)
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func (p panel) draw(b *strings.Builder) {
	var xs, ys []float64
	for _, s := range p.series {
		for _, pt := range s.points {
			if (p.logX && pt[0] <= 0) || (p.logY && pt[1] <= 0) {
				continue
			}
			xs = append(xs, pt[0])
			ys = append(ys, pt[1])
		}
	}
	if p.hline > 0 {
		ys = append(ys, p.hline)
	}
	fmt.Fprintf(b, `<text x="%d" y="14" font-size="13" text-anchor="middle">%s</text>`+"\n", panelW/2, html.EscapeString(p.title))
	if len(xs) == 0 {
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle" fill="#888">no data</text>`+"\n", panelW/2, panelH/2)
		return
	}
	x0, x1 := axisRange(xs, p.logX, false)
	y0, y1 := axisRange(ys, p.logY, true)
	plotW, plotH := float64(panelW-marginL-marginR), float64(panelH-marginT-marginB)
	sx := func(x float64) float64 {
		if p.logX {
			return marginL + (math.Log10(x)-math.Log10(x0))/(math.Log10(x1)-math.Log10(x0))*plotW
		}
		return marginL + (x-x0)/(x1-x0)*plotW
	}
	sy := func(y float64) float64 {
		if p.logY {
			return marginT + plotH - (math.Log10(y)-math.Log10(y0))/(math.Log10(y1)-math.Log10(y0))*plotH
		}
		return marginT + plotH - (y-y0)/(y1-y0)*plotH
	}
	// Grid and ticks.
	for _, t := range ticks(x0, x1, p.logX) {
		x := sx(t)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", x, marginT, x, marginT+plotH)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#444">%s</text>`+"\n", x, marginT+plotH+16, num(t))
	}
	for _, t := range ticks(y0, y1, p.logY) {
		y := sy(t)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", marginL, y, marginL+plotW, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" fill="#444">%s</text>`+"\n", marginL-6, y+4, num(t))
	}
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#888"/>`+"\n", marginL, marginT, plotW, plotH)
	fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", marginL+plotW/2, panelH-10, html.EscapeString(p.xLabel))
	fmt.Fprintf(b, `<text transform="translate(14,%.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", marginT+plotH/2, html.EscapeString(p.yLabel))
	if p.hline > 0 {
		y := sy(p.hline)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="2,3"/>`+"\n", marginL, y, marginL+plotW, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#777">%s</text>`+"\n", marginL+plotW-4, y-4, html.EscapeString(p.hlineLabel))
	}
	// Lines, points and legend.
	for i, s := range p.series {
		pts := append([][2]float64(nil), s.points...)
		sort.Slice(pts, func(a, c int) bool { return pts[a][0] < pts[c][0] })
		var coords []string
		for _, pt := range pts {
			if (p.logX && pt[0] <= 0) || (p.logY && pt[1] <= 0) {
				continue
			}
			coords = append(coords, fmt.Sprintf("%.1f,%.1f", sx(pt[0]), sy(pt[1])))
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6,4"`
		}
		if len(coords) > 1 {
			fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(coords, " "), s.color, dash)
		}
		for _, c := range coords {
			x, y, _ := strings.Cut(c, ",")
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", x, y, s.color)
		}
		ly := panelH + 8 + 18*i
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", marginL, ly, marginL+24, ly, s.color, dash)
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", marginL+30, ly+4, html.EscapeString(s.name))
	}
}

// axisRange pads the data's range; a log axis snaps to powers of ten.
func axisRange(v []float64, logScale, fromZero bool) (float64, float64) {
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	if logScale {
		return math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)+1e-9))
	}
	if fromZero {
		lo = 0
	}
	if hi == lo {
		hi = lo + 1
	}
	pad := (hi - lo) * 0.05
	if !fromZero {
		lo -= pad
	}
	return lo, hi + pad
}

// ticks are 1, 2, 5 times powers of ten on a log axis, five or so round
// numbers on a linear one.
func ticks(lo, hi float64, logScale bool) []float64 {
	var out []float64
	if logScale {
		for d := math.Floor(math.Log10(lo)); d <= math.Ceil(math.Log10(hi)); d++ {
			for _, m := range []float64{1, 2, 5} {
				if t := m * math.Pow(10, d); t >= lo*0.999 && t <= hi*1.001 {
					out = append(out, t)
				}
			}
		}
		return out
	}
	step := math.Pow(10, math.Floor(math.Log10((hi-lo)/5)))
	for _, m := range []float64{1, 2, 5, 10} {
		if (hi-lo)/(step*m) <= 6 {
			step *= m
			break
		}
	}
	for t := math.Ceil(lo/step) * step; t <= hi; t += step {
		out = append(out, t)
	}
	return out
}

func num(v float64) string {
	switch {
	case v >= 1000 && math.Mod(v, 1000) == 0:
		return fmt.Sprintf("%.0fk", v/1000)
	case v >= 1:
		return fmt.Sprintf("%g", math.Round(v*100)/100)
	default:
		return fmt.Sprintf("%g", v)
	}
}

// latencyChart draws the run: order latencies against the placement rate, and
// hello's p99 against the request rate on each path.
func latencyChart(r *report) string {
	var panels []panel
	if r.Orders != nil {
		var steps []orderStep
		steps = append(steps, r.Orders.Steps...)
		if r.Orders.Sustained != nil {
			steps = append(steps, *r.Orders.Sustained)
		}
		pick := func(f func(orderStep) float64) [][2]float64 {
			byRate := map[int]float64{}
			for _, s := range steps {
				byRate[s.Rate] = f(s)
			}
			var pts [][2]float64
			for rate, v := range byRate {
				pts = append(pts, [2]float64{float64(rate), v})
			}
			return pts
		}
		panels = append(panels, panel{
			title: "Orders through the gateway", xLabel: "orders placed per second", yLabel: "latency (ms, log)", logY: true,
			hline: ms(r.slo()), hlineLabel: "SLO p99 placement",
			series: []series{
				{name: "placement p50", color: palette[0], dashed: true, points: pick(func(s orderStep) float64 { return s.Placement.P50 })},
				{name: "placement p99", color: palette[0], points: pick(func(s orderStep) float64 { return s.Placement.P99 })},
				{name: "to confirmed p50", color: palette[1], dashed: true, points: pick(func(s orderStep) float64 { return s.ToConfirmed.P50 })},
				{name: "to confirmed p99", color: palette[1], points: pick(func(s orderStep) float64 { return s.ToConfirmed.P99 })},
			},
		})
	}
	if r.Overhead != nil && len(r.Overhead.Paths) > 0 {
		p := panel{title: "GET /service (hello, and the seed's Tornado)", xLabel: "requests per second (log)", yLabel: "p99 latency (ms, log)",
			logX: true, logY: true, hline: ms(r.slo()), hlineLabel: "SLO p99"}
		for i, pr := range r.Overhead.Paths {
			s := series{name: pr.Name, color: palette[(i+2)%len(palette)]}
			for _, pb := range pr.Probes {
				if pb.Success > 0 {
					s.points = append(s.points, [2]float64{float64(pb.Rate), pb.Latency.P99})
				}
			}
			if !probed(pr.Probes, r.Overhead.FixedRate) {
				s.points = append(s.points, [2]float64{float64(r.Overhead.FixedRate), pr.FixedMedian.P99})
			}
			p.series = append(p.series, s)
		}
		panels = append(panels, p)
	}
	return chartSVG("daprshop: latency against rate ("+r.Started.Format("2006-01-02 15:04 MST")+")", panels)
}

func probed(ps []rateProbe, rate int) bool {
	for _, p := range ps {
		if p.Rate == rate {
			return true
		}
	}
	return false
}
