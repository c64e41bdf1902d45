//! What training reports: accuracy, per-class precision/recall, the confusion matrix,
//! `metrics.csv` and the training curve as an SVG (written by hand: two polylines).

use std::fmt::Write as _;

use super::optim::EpochMetrics;

/// Confusion matrix: `counts[true][predicted]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Confusion {
    pub labels: Vec<String>,
    pub counts: Vec<Vec<u64>>,
}

impl Confusion {
    pub fn new(labels: &[String], truth: &[usize], predicted: &[usize]) -> Self {
        let k = labels.len();
        let mut counts = vec![vec![0u64; k]; k];
        for (&t, &p) in truth.iter().zip(predicted) {
            counts[t][p] += 1;
        }
        Confusion {
            labels: labels.to_vec(),
            counts,
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..self.labels.len()).map(|k| self.counts[k][k]).sum();
        correct as f64 / self.total().max(1) as f64
    }

    /// Precision and recall of class k (None when undefined).
    pub fn precision_recall(&self, k: usize) -> (Option<f64>, Option<f64>) {
        let tp = self.counts[k][k] as f64;
        let predicted: u64 = self.counts.iter().map(|r| r[k]).sum();
        let actual: u64 = self.counts[k].iter().sum();
        let ratio = |d: u64| (d > 0).then(|| tp / d as f64);
        (ratio(predicted), ratio(actual))
    }

    /// Mean recall over the classes present.
    pub fn balanced_accuracy(&self) -> f64 {
        let r: Vec<f64> = (0..self.labels.len())
            .filter_map(|k| self.precision_recall(k).1)
            .collect();
        r.iter().sum::<f64>() / r.len().max(1) as f64
    }

    /// A table for the terminal and `report.txt`.
    pub fn render(&self, title: &str) -> String {
        let mut s = String::new();
        let w = self
            .labels
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(5)
            .max(9);
        let _ = writeln!(
            s,
            "{title}: accuracy {:.1} % ({} of {}), balanced {:.1} %",
            100.0 * self.accuracy(),
            (0..self.labels.len())
                .map(|k| self.counts[k][k])
                .sum::<u64>(),
            self.total(),
            100.0 * self.balanced_accuracy()
        );
        let _ = writeln!(s, "  {:<w$}  precision  recall  support", "class");
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1} %", 100.0 * v));
        for (k, l) in self.labels.iter().enumerate() {
            let (p, r) = self.precision_recall(k);
            let _ = writeln!(
                s,
                "  {l:<w$}  {:>9}  {:>6}  {:>7}",
                pct(p),
                pct(r),
                self.counts[k].iter().sum::<u64>()
            );
        }
        let _ = writeln!(s, "  confusion (rows: true, columns: predicted):");
        let _ = writeln!(
            s,
            "  {:<w$}  {}",
            "",
            (0..self.labels.len())
                .map(|k| format!("{k:>6}"))
                .collect::<String>()
        );
        for (k, l) in self.labels.iter().enumerate() {
            let _ = writeln!(
                s,
                "  {:<w$}  {}",
                format!("{k} {l}"),
                self.counts[k]
                    .iter()
                    .map(|c| format!("{c:>6}"))
                    .collect::<String>()
            );
        }
        s
    }

    /// `confusion.csv`: header `true\predicted,<labels…>`.
    pub fn to_records(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let mut header = vec!["true\\predicted".to_string()];
        header.extend(self.labels.iter().cloned());
        let rows = self
            .labels
            .iter()
            .zip(&self.counts)
            .map(|(l, r)| {
                std::iter::once(l.clone())
                    .chain(r.iter().map(u64::to_string))
                    .collect()
            })
            .collect();
        (header, rows)
    }

    /// `per_class.csv` rows: label, precision, recall, support.
    pub fn per_class_records(&self) -> Vec<Vec<String>> {
        let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
        self.labels
            .iter()
            .enumerate()
            .map(|(k, l)| {
                let (p, r) = self.precision_recall(k);
                vec![
                    l.clone(),
                    f(p),
                    f(r),
                    self.counts[k].iter().sum::<u64>().to_string(),
                ]
            })
            .collect()
    }
}

pub const METRICS_HEADER: [&str; 4] = ["epoch", "train_loss", "val_loss", "val_accuracy"];

pub fn metrics_records(history: &[EpochMetrics]) -> Vec<Vec<String>> {
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
    history
        .iter()
        .map(|m| {
            vec![
                m.epoch.to_string(),
                format!("{:.6}", m.train_loss),
                opt(m.val_loss),
                opt(m.val_accuracy),
            ]
        })
        .collect()
}

/// The loss curves (train, validation) and the kept epoch, as a standalone SVG.
pub fn curve_svg(history: &[EpochMetrics], best_epoch: usize) -> String {
    curve_svg_with(history, best_epoch, "epoch")
}

/// [`curve_svg`] with another name for the x axis (`adapt`: one point per evaluation).
pub fn curve_svg_with(history: &[EpochMetrics], best_epoch: usize, x_name: &str) -> String {
    let (w, h, pad) = (640.0, 360.0, 48.0);
    let n = history.len().max(2) as f64;
    let max_loss = history
        .iter()
        .flat_map(|m| std::iter::once(m.train_loss).chain(m.val_loss))
        .fold(1e-9f64, f64::max);
    let x = |e: usize| pad + (e as f64 - 1.0) / (n - 1.0) * (w - 2.0 * pad);
    let y = |l: f64| h - pad - (l / max_loss) * (h - 2.0 * pad);
    let line = |pick: &dyn Fn(&EpochMetrics) -> Option<f64>| -> String {
        history
            .iter()
            .filter_map(|m| pick(m).map(|l| format!("{:.1},{:.1}", x(m.epoch), y(l))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{b}" stroke="black"/>"#,
        b = h - pad,
        r = w - pad
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{x_name} (1–{})</text>"#,
        w / 2.0,
        h - 12.0,
        history.len()
    );
    let _ = writeln!(
        s,
        r#"<text x="12" y="{}" transform="rotate(-90 12 {})" text-anchor="middle">loss (0–{max_loss:.3})</text>"#,
        h / 2.0,
        h / 2.0
    );
    let _ = writeln!(
        s,
        r#"<polyline fill="none" stroke="steelblue" stroke-width="2" points="{}"/>"#,
        line(&|m| Some(m.train_loss))
    );
    let _ = writeln!(
        s,
        r#"<polyline fill="none" stroke="darkorange" stroke-width="2" points="{}"/>"#,
        line(&|m| m.val_loss)
    );
    if best_epoch > 0 {
        let _ = writeln!(
            s,
            r#"<line x1="{bx:.1}" y1="{pad}" x2="{bx:.1}" y2="{}" stroke="gray" stroke-dasharray="4 3"/>"#,
            h - pad,
            bx = x(best_epoch)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="20" fill="steelblue">train loss</text><text x="{}" y="20" fill="darkorange">validation loss</text><text x="{}" y="20" fill="gray">kept: {x_name} {best_epoch}</text>"#,
        pad,
        pad + 90.0,
        pad + 220.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_recall_from_confusion() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let c = Confusion::new(&labels, &[0, 0, 1, 1], &[0, 1, 1, 1]);
        assert_eq!(c.counts, vec![vec![1, 1], vec![0, 2]]);
        assert_eq!(c.accuracy(), 0.75);
        assert_eq!(c.precision_recall(0), (Some(1.0), Some(0.5)));
        assert_eq!(c.precision_recall(1), (Some(2.0 / 3.0), Some(1.0)));
        assert!(c.render("val").contains("accuracy 75.0 %"));
    }

    #[test]
    fn curve_is_an_svg() {
        let h: Vec<EpochMetrics> = (1..=3)
            .map(|e| EpochMetrics {
                epoch: e,
                train_loss: 1.0 / e as f64,
                val_loss: Some(1.2 / e as f64),
                val_accuracy: Some(0.5),
            })
            .collect();
        let svg = curve_svg(&h, 3);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
    }
}
