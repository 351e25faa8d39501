//! Small line charts drawn as inline SVG on the server: no chart library, no script, readable
//! without JavaScript, and described for screen readers.

use super::format::escape;

pub struct Line {
    pub label: &'static str,
    /// A CSS class that picks the stroke colour.
    pub class: &'static str,
    pub values: Vec<Option<f64>>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;

/// An SVG line chart of `lines` over the time labels `times` (first and last are printed);
/// `unit` formats the y-axis maximum.
pub fn line_chart(
    title: &str,
    times: &[String],
    lines: &[Line],
    unit: fn(f64) -> String,
) -> String {
    let max = lines
        .iter()
        .flat_map(|l| l.values.iter().flatten())
        .fold(0.0_f64, |m, v| m.max(*v));
    let n = times.len();
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |i: usize| {
        LEFT + if n > 1 {
            plot_w * i as f64 / (n - 1) as f64
        } else {
            plot_w / 2.0
        }
    };
    let y = |v: f64| TOP + plot_h - if max > 0.0 { plot_h * v / max } else { 0.0 };
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\">\
         <title>{}</title>",
        escape(title),
        escape(title)
    );
    svg.push_str(&format!(
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\"/>\
         <text class=\"tick\" x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\">{}</text>\
         <text class=\"tick\" x=\"{tx}\" y=\"{b}\" text-anchor=\"end\">0</text>",
        escape(&unit(max)),
        b = TOP + plot_h,
        r = WIDTH - 8.0,
        tx = LEFT - 6.0,
        ty = TOP + 10.0,
    ));
    if let (Some(first), Some(last)) = (times.first(), times.last()) {
        svg.push_str(&format!(
            "<text class=\"tick\" x=\"{LEFT}\" y=\"{HEIGHT}\">{}</text>\
             <text class=\"tick\" x=\"{}\" y=\"{HEIGHT}\" text-anchor=\"end\">{}</text>",
            escape(first),
            WIDTH - 8.0,
            escape(last)
        ));
    }
    for line in lines {
        // A gap in the data (a bucket without traffic) breaks the line rather than bridging it.
        let mut segment = String::new();
        let mut segments = Vec::new();
        for (i, v) in line.values.iter().enumerate() {
            match v {
                Some(v) => segment.push_str(&format!("{:.1},{:.1} ", x(i), y(*v))),
                None if !segment.is_empty() => segments.push(std::mem::take(&mut segment)),
                None => {}
            }
        }
        if !segment.is_empty() {
            segments.push(segment);
        }
        for points in segments {
            svg.push_str(&format!(
                "<polyline class=\"series {}\" points=\"{}\"><title>{}</title></polyline>",
                line.class,
                points.trim_end(),
                escape(line.label)
            ));
        }
    }
    svg.push_str("</svg><p class=\"legend\">");
    for line in lines {
        svg.push_str(&format!(
            "<span class=\"key {}\">{}</span>",
            line.class,
            escape(line.label)
        ));
    }
    svg.push_str("</p>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_draws_its_lines_and_breaks_at_gaps() {
        let svg = line_chart(
            "Requests & <errors>",
            &["a".into(), "b".into(), "c".into(), "d".into()],
            &[Line {
                label: "Requests",
                class: "s1",
                values: vec![Some(1.0), Some(4.0), None, Some(2.0)],
            }],
            |v| format!("{v:.0}"),
        );
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(svg.contains("aria-label=\"Requests &amp; &lt;errors&gt;\""));
        assert!(svg.contains(">4</text>"), "{svg}");
    }
}
