//! Aligned tables on stdout (`status`, `targets`, `dashboards`, `alert list`).

use super::Printer;

impl Printer {
    /// A table on stdout: a header and rows, columns padded to their widest cell.
    pub fn table(&self, header: &[&str], rows: &[Vec<String>]) {
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: Vec<String>| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    out.push_str(cell);
                } else {
                    out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                }
            }
            out.trim_end().to_string()
        };
        self.result(&line(header.iter().map(|h| h.to_string()).collect()), false);
        for row in rows {
            self.result(&line(row.clone()), false);
        }
    }
}
