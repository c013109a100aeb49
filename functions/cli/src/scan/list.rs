//! Plain lists: one reference a line; blank lines and `#` comments (whole lines, or after a
//! blank on a line) skipped. The same as `ptc map -` and `ptc prewarm --image -` read.

use super::{Edit, FileScan, Found};

/// The references of a list, each with its bytes ([`Edit::Span`]) and `line N`.
pub fn scan(text: &str) -> FileScan {
    let mut scan = FileScan::default();
    for (n, line, line_start) in super::lines_with_offsets(text) {
        // `ref # comment`: the comment starts at a `#` after a blank.
        let content = match line.find(" #").or_else(|| line.find("\t#")) {
            Some(at) => &line[..at],
            None => line,
        };
        let trimmed = content.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let lead = content.len() - content.trim_start().len();
        let at = line_start + lead;
        scan.found.push(Found::new(
            format!("line {}", n + 1),
            trimmed.to_owned(),
            Edit::Span(at..at + trimmed.len()),
        ));
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_spans() {
        let text = "# base images\r\nnginx:1.25\r\n\r\n  quay.io/a/b:v1 # pinned\r\n#gcr.io/x\r\n";
        let scan = scan(text);
        let images: Vec<(&str, &str)> = scan
            .found
            .iter()
            .map(|f| (f.location.as_str(), f.image.as_str()))
            .collect();
        assert_eq!(
            images,
            [("line 2", "nginx:1.25"), ("line 4", "quay.io/a/b:v1")]
        );
        for f in &scan.found {
            let Edit::Span(r) = &f.edit else { panic!() };
            assert_eq!(&text[r.clone()], f.image);
        }
    }

    #[test]
    fn a_bom_is_skipped_on_the_first_line_only() {
        // A U+FEFF later in the file is no BOM: it stays in the line, and the spans of
        // the lines are where their text is.
        let text = "\u{feff}nginx:1.25\n\u{feff}quay.io/a/b:1\n  ghcr.io/o/r:2\n";
        let scan = scan(text);
        let images: Vec<&str> = scan.found.iter().map(|f| f.image.as_str()).collect();
        assert_eq!(
            images,
            ["nginx:1.25", "\u{feff}quay.io/a/b:1", "ghcr.io/o/r:2"]
        );
        for f in &scan.found {
            let Edit::Span(r) = &f.edit else { panic!() };
            assert_eq!(&text[r.clone()], f.image);
        }
    }
}
