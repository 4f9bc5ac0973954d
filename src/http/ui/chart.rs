//! The edge page's chart, as inline SVG made on the server: loss (0–100 %) and RTT (0 to
//! the window's highest) over a time window, one polyline each, and a dot per point with
//! a `<title>` a browser shows on hover. Pure: points in, markup out.

use chrono::{DateTime, Utc};
use graph_store::ui::SeriesPoint;
use maud::{html, Markup};

const W: f64 = 720.0;
const H: f64 = 200.0;
/// Room for the axis labels.
const PAD_L: f64 = 44.0;
const PAD_R: f64 = 44.0;
const PAD_Y: f64 = 16.0;

/// The chart of `points` between `from` and `to`.
pub fn chart(points: &[SeriesPoint], from: DateTime<Utc>, to: DateTime<Utc>) -> Markup {
    let span = (to - from).num_milliseconds().max(1) as f64;
    let x =
        |t: DateTime<Utc>| PAD_L + (W - PAD_L - PAD_R) * ((t - from).num_milliseconds() as f64 / span).clamp(0.0, 1.0);
    let y = |frac: f64| H - PAD_Y - (H - 2.0 * PAD_Y) * frac.clamp(0.0, 1.0);
    let rtt_max = points.iter().filter_map(|p| p.rtt_ms).fold(0.0_f64, f64::max).max(1.0);
    let loss: Vec<(f64, f64, &SeriesPoint)> =
        points.iter().filter_map(|p| p.loss_pct.map(|l| (x(p.at), y(l / 100.0), p))).collect();
    let rtt: Vec<(f64, f64, &SeriesPoint)> =
        points.iter().filter_map(|p| p.rtt_ms.map(|r| (x(p.at), y(r / rtt_max), p))).collect();
    let line = |pts: &[(f64, f64, &SeriesPoint)]| {
        pts.iter().map(|(x, y, _)| format!("{x:.1},{y:.1}")).collect::<Vec<_>>().join(" ")
    };
    let label = |p: &SeriesPoint| {
        format!(
            "{} · {} result(s) · loss {} · RTT {}",
            p.at.format("%Y-%m-%d %H:%M"),
            p.results,
            p.loss_pct.map(|l| format!("{l:.0} %")).unwrap_or_else(|| "–".into()),
            p.rtt_ms.map(|r| format!("{r:.2} ms")).unwrap_or_else(|| "–".into()),
        )
    };
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (W) " " (H) } role="img"
            data-points=(points.len()) aria-label="Loss and RTT over the window" {
            rect.frame x=(PAD_L) y=(PAD_Y) width=(W - PAD_L - PAD_R) height=(H - 2.0 * PAD_Y) {}
            text.axis x=(PAD_L - 4.0) y=(PAD_Y + 4.0) text-anchor="end" { "100 %" }
            text.axis x=(PAD_L - 4.0) y=(H - PAD_Y) text-anchor="end" { "0 %" }
            text.axis.rtt x=(W - PAD_R + 4.0) y=(PAD_Y + 4.0) { (format!("{rtt_max:.1} ms")) }
            text.axis x=(PAD_L) y=(H - 2.0) { (from.format("%m-%d %H:%M")) }
            text.axis x=(W - PAD_R) y=(H - 2.0) text-anchor="end" { (to.format("%m-%d %H:%M")) }
            polyline.loss points=(line(&loss)) {}
            polyline.rtt points=(line(&rtt)) {}
            @for (x, y, p) in &loss { circle.pt.loss cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="2.5" { title { (label(p)) } } }
            @for (x, y, p) in &rtt { circle.pt.rtt cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="2.5" { title { (label(p)) } } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn point(min: i64, loss: Option<f64>, rtt: Option<f64>) -> SeriesPoint {
        let at = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap() + chrono::Duration::minutes(min);
        SeriesPoint { at, results: 3, loss_pct: loss, rtt_ms: rtt }
    }

    #[test]
    fn every_point_is_drawn_and_titled() {
        let from = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        let to = from + chrono::Duration::hours(1);
        let pts = [point(0, Some(0.0), Some(2.0)), point(30, Some(100.0), None), point(60, Some(50.0), Some(4.0))];
        let svg = chart(&pts, from, to).into_string();
        assert_eq!(svg.matches("<circle class=\"pt loss\"").count(), 3, "{svg}");
        assert_eq!(svg.matches("<circle class=\"pt rtt\"").count(), 2, "{svg}");
        assert_eq!(svg.matches("<title>").count(), 5);
        assert!(svg.contains("data-points=\"3\""));
        // Loss 0 at the left bottom, 100 % at the top in the middle.
        assert!(svg.contains("points=\"44.0,184.0 360.0,16.0 676.0,100.0\""), "{svg}");
        assert!(svg.contains("4.0 ms"));
    }

    #[test]
    fn no_points_is_an_empty_frame() {
        let from = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        let svg = chart(&[], from, from).into_string();
        assert!(svg.contains("data-points=\"0\"") && !svg.contains("<circle"), "{svg}");
    }
}
