//! Dockerfiles and Containerfiles: the images of their `FROM` lines, as BuildKit reads them,
//! and the images `COPY --from=<image>` and `RUN --mount=...,from=<image>` name (BuildKit
//! pulls them when the value is not a stage: the Dockerfile reference, `COPY --from`: "an
//! image, a build stage, or a named context"; `RUN --mount` `from`: "build stage, context,
//! or image name for the root of the source"). A value equal to any stage's name in the file
//! (lowercased, as `parseBuildStageName` does) or a stage index (`0`, `1`) is a stage, not an
//! image. `ONBUILD COPY --from=<image>` and `ONBUILD RUN --mount=from=<image>` are scanned
//! too (pulled when the image is used as a base; see [`scan`]). A reference written with
//! quotes or escapes (`FROM "nginx:1"`) is scanned as BuildKit reads it, unquoted, and not
//! rewritten (see `edit_of`).
//!
//! Sources: the Dockerfile reference (<https://docs.docker.com/reference/dockerfile/>, and
//! <https://docs.docker.com/reference/dockerfile/#understand-how-arg-and-from-interact>: `FROM
//! [--platform=<platform>] <image> [AS <name>]`, "Understand how ARG and FROM interact",
//! parser directives, line continuation, comments, variable substitution) and BuildKit's
//! parser (github.com/moby/buildkit at 73ed6825, `frontend/dockerfile/`):
//! - `parser/parser.go`: a line whose first non-blank is `#` is a comment, also inside a
//!   continuation (`isComment`); a blank line inside a continuation is skipped
//!   (`isEmptyContinuationLine`); the escape character (`\`, or `` ` `` with the `# escape=`
//!   directive, read only before the first comment, blank line or instruction) ends a
//!   continued line when only blanks follow it (`lineContinuationRegex`); heredocs
//!   (`<<EOF` ... `EOF`) hold lines that are not instructions;
//! - `instructions/parse.go` `parseFrom`, `parseBuildStageName`: one argument, or three with
//!   `AS` (any case); the stage name is lowercased; `parseArg`: `NAME` or `NAME=value`;
//! - `dockerfile2llb/convert.go`: only the `ARG`s before the first `FROM` (the meta args)
//!   are substituted in `FROM` (`buildDispatchStates`, `ProcessWordWithMatches`, each meta
//!   arg's default itself expanded with the earlier ones), an `ARG` with no default is unset;
//!   a base name equal to an earlier stage's name is that stage (`addState`:
//!   `statesByName[BaseName]`, exact match against the lowercased names), `scratch` is the
//!   empty image (`emptyImageName`);
//! - `shell/lex.go` `processDollar`: `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`,
//!   `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`, `${VAR?msg}` (`:` makes an empty value
//!   count as unset); quotes are removed, the escape character keeps the next one literal.
//!
//! An unset variable is reported as unresolved (BuildKit would substitute the empty string,
//! or a `--build-arg` the scan does not know). Pattern substitutions (`${VAR#p}`, `${VAR%p}`,
//! `${VAR/p/r}`) are reported as unresolved too.

use std::collections::HashMap;

use super::{Edit, FileScan, Found};

/// A physical piece of a logical line: its text and its byte offset in the file.
struct Piece<'a> {
    text: &'a str,
    offset: usize,
}

/// One instruction: its text, the pieces it was joined from, its first line (1-based).
struct Instruction<'a> {
    pieces: Vec<Piece<'a>>,
    line: usize,
}

impl Instruction<'_> {
    fn text(&self) -> String {
        self.pieces.iter().map(|p| p.text).collect()
    }

    /// The file range of `range` in [`Self::text`] when it lies within one piece.
    fn file_range(&self, range: std::ops::Range<usize>) -> Option<std::ops::Range<usize>> {
        let mut at = 0;
        for piece in &self.pieces {
            let end = at + piece.text.len();
            if range.start >= at && range.end <= end {
                return Some((piece.offset + range.start - at)..(piece.offset + range.end - at));
            }
            at = end;
        }
        None
    }
}

/// The images of a Dockerfile's `FROM` lines and of `COPY --from=` / `RUN --mount=..,from=`
/// (see the module's docs): each with `FROM line N` (`COPY --from line N`, `RUN --mount line
/// N`), [`Edit::Span`] when written literally, [`Edit::No`] when built from `ARG`s.
pub fn scan(text: &str) -> FileScan {
    let escape = escape_directive(text);
    let mut scan = FileScan::default();
    let mut meta_args: HashMap<String, String> = HashMap::new();
    let mut stages: Vec<String> = Vec::new();
    let mut seen_from = false;
    let instructions = instructions(text, escape);
    let all_stages: Vec<String> = instructions
        .iter()
        .filter_map(|i| {
            let line = i.text();
            let (word, rest_at) = first_word(&line);
            if !word.eq_ignore_ascii_case("FROM") {
                return None;
            }
            let args: Vec<String> = words(&line[rest_at..], escape)
                .into_iter()
                .map(|(w, _)| w)
                .filter(|w| !w.starts_with("--"))
                .collect();
            (args.len() == 3 && args[1].eq_ignore_ascii_case("as"))
                .then(|| args[2].to_ascii_lowercase())
        })
        .collect();
    for instruction in instructions {
        let line = instruction.text();
        let (word, mut rest_at) = first_word(&line);
        let mut upper = word.to_ascii_uppercase();
        // `ONBUILD COPY --from=<image>` (or `RUN --mount=from=`): a trigger run when the
        // image is used as a base, its sources pulled then (BuildKit
        // `dockerfile2llb/convert.go` `initOnBuildTriggers` -> `toCommand`, at 73ed6825).
        // There no ARG is substituted (`shell.EnvsFromSlice(nil)`), and the stages are the
        // other build's, unknown here: a value naming one of this file's stages is still
        // taken as a stage (not scanned, never rewritten), the cautious reading.
        let mut onbuild = false;
        let no_args = HashMap::new();
        if seen_from && upper == "ONBUILD" {
            let (inner, inner_at) = first_word(&line[rest_at..]);
            onbuild = true;
            upper = inner.to_ascii_uppercase();
            rest_at += inner_at;
        }
        if seen_from && (upper == "COPY" || upper == "RUN") {
            let (args, prefix) = if onbuild {
                (&no_args, "ONBUILD ")
            } else {
                (&meta_args, "")
            };
            for flag in image_flags(&upper, &line[rest_at..], escape) {
                let file_range = flag.range.and_then(|range| {
                    instruction.file_range((range.start + rest_at)..(range.end + rest_at))
                });
                let location = format!("{prefix}{upper} {} line {}", flag.flag, instruction.line);
                if let Some(found) = flag_image(
                    location,
                    &flag.value,
                    flag.written.as_deref(),
                    file_range,
                    args,
                    &all_stages,
                    escape,
                ) {
                    scan.found.push(found);
                }
            }
            continue;
        }
        if onbuild {
            continue; // another trigger: no image of its own
        }
        match upper.as_str() {
            "ARG" if !seen_from => {
                for (token, _) in words(&line[rest_at..], escape) {
                    match token.split_once('=') {
                        Some((name, value)) if !name.is_empty() => {
                            let expanded = expand(value, &meta_args, escape);
                            if expanded.unresolved.is_empty() {
                                meta_args.insert(name.to_owned(), expanded.value);
                            }
                        }
                        _ => {} // `ARG NAME`: unset unless --build-arg gives it
                    }
                }
            }
            "FROM" => {
                seen_from = true;
                let args: Vec<(String, std::ops::Range<usize>)> = words(&line[rest_at..], escape)
                    .into_iter()
                    .filter(|(w, _)| !w.starts_with("--"))
                    .map(|(w, r)| (w, (r.start + rest_at)..(r.end + rest_at)))
                    .collect();
                let Some((base, base_range)) = args.first().cloned() else {
                    continue;
                };
                if args.len() == 3 && args[1].0.eq_ignore_ascii_case("as") {
                    stages.push(args[2].0.to_ascii_lowercase());
                }
                let expanded = expand(&base, &meta_args, escape);
                let location = format!("FROM line {}", instruction.line);
                if expanded.unresolved.is_empty() {
                    let name = expanded.value;
                    let stage_before = stages
                        [..stages.len().saturating_sub(usize::from(args.len() == 3))]
                        .contains(&name);
                    if name == "scratch" || stage_before {
                        continue; // the empty image, or an earlier stage: no image to pull
                    }
                    let (edit, note) = edit_of(&base, instruction.file_range(base_range), escape);
                    let mut found = Found::new(location, name, edit);
                    found.note = note;
                    scan.found.push(found);
                } else {
                    let mut found = Found::new(
                        location,
                        base.clone(),
                        Edit::No("built from ARG without a value".into()),
                    );
                    found.unresolved = Some(unresolved(
                        &expanded.unresolved,
                        "has no default (given by --build-arg at build time)",
                    ));
                    scan.found.push(found);
                }
            }
            _ => {}
        }
    }
    scan
}

/// An image flag's value: the flag, the value (as written for a literal; quotes removed
/// for a `--mount` written with quotes or escapes), its range in the instruction's
/// arguments when it can be replaced where it is, and the flag word as written when its
/// quotes or escapes were removed.
struct FlagValue {
    flag: &'static str,
    value: String,
    range: Option<std::ops::Range<usize>>,
    written: Option<String>,
}

/// The `--from=` of a COPY, the `from=` of each `--mount=` of a RUN. Flags come before the
/// first argument that is not one.
///
/// A `--mount` flag is read as BuildKit reads it (at 73ed6825): `parser/split_command.go`
/// `extractBuilderFlags` removes the word's quotes (the escape character keeping the next
/// character), then `instructions/commands_runmount.go` `parseMount` splits the value as
/// one CSV record (`csvvalue.Fields`: a field opened by `"` runs to the next lone `"`, `""`
/// being a quote) and lowercases each key (`strings.ToLower(key)`), so `FROM=` and
/// `"from=.."` name an image as `from=` does. A `from` out of a word written with quotes or
/// escapes has no range (not rewritten) and names the word in `written`.
fn image_flags(instruction: &str, args: &str, escape: char) -> Vec<FlagValue> {
    let mut out = Vec::new();
    for (word, range) in words(args, escape) {
        if !word.starts_with("--") {
            break;
        }
        if instruction == "COPY"
            && let Some(value) = word.strip_prefix("--from=")
        {
            let start = range.start + "--from=".len();
            out.push(FlagValue {
                flag: "--from",
                value: value.to_owned(),
                range: Some(start..range.end),
                written: None,
            });
        }
        if instruction != "RUN" {
            continue;
        }
        let unquoted = flag_unquoted(&word, escape);
        let Some(mount) = unquoted.strip_prefix("--mount=") else {
            continue;
        };
        if unquoted == word {
            // Written plainly: no quotes, so every CSV field is unquoted and sits where
            // it is written.
            let mut at = range.start + "--mount=".len();
            for field in mount.split(',') {
                if let Some((key, value)) = field.split_once('=')
                    && key.eq_ignore_ascii_case("from")
                {
                    let start = at + key.len() + 1;
                    out.push(FlagValue {
                        flag: "--mount",
                        value: value.to_owned(),
                        range: Some(start..start + value.len()),
                        written: None,
                    });
                }
                at += field.len() + 1;
            }
        } else {
            for field in csv_fields(mount).unwrap_or_default() {
                if let Some((key, value)) = field.split_once('=')
                    && key.eq_ignore_ascii_case("from")
                {
                    out.push(FlagValue {
                        flag: "--mount",
                        value: value.to_owned(),
                        range: None,
                        written: Some(word.clone()),
                    });
                }
            }
        }
    }
    out
}

/// A flag word with its quotes removed, the escape character keeping the next character
/// (BuildKit `parser/split_command.go` `extractBuilderFlags`, at 73ed6825).
fn flag_unquoted(word: &str, escape: char) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, c) if c == escape => out.extend(chars.next()),
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (_, c) => out.push(c),
        }
    }
    out
}

/// The fields of one CSV record as `csvvalue.Fields` reads it (github.com/tonistiigi/
/// go-csvvalue at 030d3b2, `csvvalue.go`, RFC 4180, strict as BuildKit uses it):
/// comma-separated; a field opened by `"` runs to the next lone `"`, `""` inside it being
/// one `"`. `None` where `Fields` fails (a `"` inside an unquoted field, text after a
/// closing quote, an unclosed quote): BuildKit then refuses the mount, so it names no image.
fn csv_fields(record: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = record;
    loop {
        let Some(quoted) = rest.strip_prefix('"') else {
            let (field, next) = match rest.split_once(',') {
                Some((field, next)) => (field, Some(next)),
                None => (rest, None),
            };
            if field.contains('"') {
                return None; // csv.ErrBareQuote
            }
            out.push(field.to_owned());
            match next {
                Some(next) => rest = next,
                None => return Some(out),
            }
            continue;
        };
        let mut field = String::new();
        let mut chars = quoted.char_indices();
        let next = loop {
            let (at, c) = chars.next()?; // unclosed: csv.ErrQuote
            if c != '"' {
                field.push(c);
                continue;
            }
            let after = &quoted[at + 1..];
            if after.starts_with('"') {
                field.push('"');
                chars.next();
            } else if let Some(next) = after.strip_prefix(',') {
                break Some(next);
            } else if after.is_empty() {
                break None;
            } else {
                return None; // text after the closing quote: csv.ErrQuote
            }
        };
        out.push(field);
        match next {
            Some(next) => rest = next,
            None => return Some(out),
        }
    }
}

/// The image a `--from` value names, `None` when it names a stage (see the module's docs).
fn flag_image(
    location: String,
    value: &str,
    written: Option<&str>,
    file_range: Option<std::ops::Range<usize>>,
    meta_args: &HashMap<String, String>,
    stages: &[String],
    escape: char,
) -> Option<Found> {
    let expanded = expand(value, meta_args, escape);
    if !expanded.unresolved.is_empty() {
        let mut found = Found::new(
            location,
            value.to_owned(),
            Edit::No("built from a variable without a value".into()),
        );
        found.unresolved = Some(unresolved(
            &expanded.unresolved,
            "has no default here (a --build-arg or a stage ARG at build time)",
        ));
        return Some(found);
    }
    let name = expanded.value;
    if name.is_empty()
        || stages.contains(&name.to_ascii_lowercase())
        || name.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let (edit, note) = match written {
        Some(word) => quoted_edit(word),
        None => edit_of(value, file_range, escape),
    };
    let mut found = Found::new(location, name, edit);
    found.note = note;
    Some(found)
}

/// How a reference written as `word` (at `file_range`) is rewritten, and the note its scan
/// gets. A literal word is replaced where it is. A word with `$` is built from ARGs. A word
/// with quotes or the escape character but no `$` names the image without them: BuildKit
/// removes them (`FROM`: `dockerfile2llb/convert.go` `ProcessWordWithMatches` on the base
/// name; `COPY --from`, `RUN --mount`: `parser/split_command.go` `extractBuilderFlags`
/// drops the quotes of a flag; at 73ed6825), so the unquoted image is scanned, and left for
/// a rewrite by hand (the replacement would have to drop the quotes too).
fn edit_of(
    word: &str,
    file_range: Option<std::ops::Range<usize>>,
    escape: char,
) -> (Edit, Option<String>) {
    if word.contains('$') {
        return (
            Edit::No(format!(
                "built from ARG {word}: change the ARG's default instead"
            )),
            Some(format!("from {word} with the ARG defaults")),
        );
    }
    if word.contains(['"', '\'', escape]) {
        return quoted_edit(word);
    }
    match file_range {
        Some(range) => (Edit::Span(range), None),
        None => (
            Edit::No("the reference spans a line continuation".into()),
            None,
        ),
    }
}

/// The refusal and note of a reference out of `word`, written with quotes or escapes.
fn quoted_edit(word: &str) -> (Edit, Option<String>) {
    (
        Edit::No(format!(
            "written with quotes or escapes ({word}), which BuildKit removes: change it by hand"
        )),
        Some(format!(
            "written {word}: quotes and escapes removed as BuildKit does"
        )),
    )
}

/// The escape character: `` ` `` when a `# escape=`` ` directive opens the file, else `\`.
fn escape_directive(text: &str) -> char {
    for line in text.lines() {
        let line = line.trim_start_matches('\u{feff}').trim();
        let Some(body) = line.strip_prefix('#') else {
            return '\\'; // a blank line or an instruction ends the directives
        };
        let Some((key, value)) = body.split_once('=') else {
            return '\\'; // a comment ends them too
        };
        let key = key.trim();
        if !key.bytes().all(|b| b.is_ascii_alphanumeric()) || key.is_empty() {
            return '\\';
        }
        if key.eq_ignore_ascii_case("escape") {
            return if value.trim() == "`" { '`' } else { '\\' };
        }
    }
    '\\'
}

/// `$A, $B <why>`: the variables a reference was built from that have no value.
fn unresolved(vars: &[String], why: &str) -> String {
    let names: Vec<String> = vars.iter().map(|v| format!("${v}")).collect();
    format!("{} {why}", names.join(", "))
}

/// The instructions of the file: continuations joined, comments and blank lines skipped,
/// heredoc bodies skipped.
fn instructions(text: &str, escape: char) -> Vec<Instruction<'_>> {
    let mut out = Vec::new();
    let mut current: Option<Instruction<'_>> = None;
    let mut heredocs: Vec<(String, bool)> = Vec::new();
    for (n, line, line_start) in super::lines_with_offsets(text) {
        if let Some((word, strip_tabs)) = heredocs.first() {
            let body = if *strip_tabs {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if body == word {
                heredocs.remove(0);
            }
            continue;
        }
        let blank = line.trim().is_empty();
        let comment = line.trim_start().starts_with('#');
        if blank || comment {
            continue; // outside: not an instruction; inside a continuation: skipped
        }
        let (piece, continued) = match continuation(line, escape) {
            Some(cut) => (&line[..cut], true),
            None => (line, false),
        };
        let instruction = current.get_or_insert_with(|| Instruction {
            pieces: Vec::new(),
            line: n + 1,
        });
        instruction.pieces.push(Piece {
            text: piece,
            offset: line_start,
        });
        if !continued {
            let done = current.take().expect("set above");
            heredocs = heredoc_words(&done.text());
            out.push(done);
        }
    }
    out.extend(current);
    out
}

/// Where the escape character that continues `line` is (only blanks after it, BuildKit's
/// `lineContinuationRegex`), `None` when the line is not continued.
fn continuation(line: &str, escape: char) -> Option<usize> {
    let trimmed = line.trim_end_matches([' ', '\t']);
    let cut = trimmed.strip_suffix(escape)?;
    // `([^\\])\\[ \t]*$`: an escaped escape (`\\` at the end) does not continue.
    if cut.ends_with(escape) {
        return None;
    }
    Some(cut.len())
}

/// The heredoc terminators a RUN, COPY or ADD line opens (`<<EOF`, `<<-EOF`, `<<"EOF"`), as
/// BuildKit finds them (`frontend/dockerfile/parser/parser.go` at 73ed6825,
/// `heredocsFromLine`): the line is split into words with quotes and escapes kept
/// (`shlex.RawQuotes`, `RawEscapes`, `ProcessWords`, the escape character always `\`), and
/// a heredoc is a whole word matching `reHeredoc` = `^(\d*)<<(-?)\s*([^<]*)$` whose rest is
/// one word once its quotes are removed (`heredocFromMatch`). So a `<<EOF` inside a quoted
/// word (`RUN echo "use <<EOF here"`) is not a heredoc. `ONBUILD RUN <<EOF` opens one too:
/// `Node.canContainHeredoc` unwraps a `heredocCompoundDirectives` instruction (`ONBUILD`)
/// to its inner one before checking `heredocDirectives` (ADD, COPY, RUN).
fn heredoc_words(line: &str) -> Vec<(String, bool)> {
    let (mut word, rest_at) = first_word(line);
    if word.eq_ignore_ascii_case("ONBUILD") {
        word = first_word(&line[rest_at..]).0;
    }
    if !["RUN", "COPY", "ADD"].contains(&word.to_ascii_uppercase().as_str()) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (token, _) in words(line, '\\') {
        let digits = token.trim_start_matches(|c: char| c.is_ascii_digit());
        let Some(rest) = digits.strip_prefix("<<") else {
            continue;
        };
        let (strip_tabs, rest) = match rest.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let rest = rest.trim_start();
        if rest.is_empty() || rest.contains('<') {
            continue;
        }
        let name = unquote(rest);
        if !name.is_empty() {
            out.push((name, strip_tabs));
        }
    }
    out
}

/// `word` with its quotes removed, the escape character `\` keeping the next one (outside
/// single quotes), as BuildKit's lexer reads a heredoc's name.
fn unquote(word: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') => quote = None,
            (Some('\''), c) => out.push(c),
            (_, '\\') => out.extend(chars.next()),
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (_, c) => out.push(c),
        }
    }
    out
}

/// The first word of an instruction and where the rest starts.
fn first_word(line: &str) -> (&str, usize) {
    let trimmed = line.trim_start();
    let lead = line.len() - trimmed.len();
    let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
    (&trimmed[..end], lead + end)
}

/// Whitespace-separated words, quotes and escapes kept in the word (the shell lexer removes
/// them), each with its range in `text`.
fn words(text: &str, escape: char) -> Vec<(String, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == escape && quote != Some('\'') {
            start.get_or_insert(i);
            escaped = true;
            continue;
        }
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => {
                start.get_or_insert(i);
                quote = Some(c);
            }
            (None, c) if c.is_whitespace() => {
                if let Some(s) = start.take() {
                    out.push((text[s..i].to_owned(), s..i));
                }
            }
            (None, _) => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.push((text[s..].to_owned(), s..text.len()));
    }
    out
}

/// A word after substitution: its value, and the variables that had no value.
#[derive(Debug, PartialEq, Eq)]
struct Expanded {
    value: String,
    unresolved: Vec<String>,
}

/// Substitute `args` in `word` as BuildKit's `shell/lex.go` does (see the module's docs),
/// quotes removed.
fn expand(word: &str, args: &HashMap<String, String>, escape: char) -> Expanded {
    let mut out = Expanded {
        value: String::new(),
        unresolved: Vec::new(),
    };
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if c == escape && quote != Some('\'') && i + 1 < chars.len() {
            out.value.push(chars[i + 1]);
            i += 2;
            continue;
        }
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                i += 1;
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                i += 1;
            }
            (q, '$') if q != Some('\'') => i = dollar(&chars, i, args, escape, &mut out),
            _ => {
                out.value.push(c);
                i += 1;
            }
        }
    }
    out
}

/// One `$...` at `chars[i]`; returns the index after it.
fn dollar(
    chars: &[char],
    i: usize,
    args: &HashMap<String, String>,
    escape: char,
    out: &mut Expanded,
) -> usize {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if chars.get(i + 1) != Some(&'{') {
        let end = (i + 1..chars.len())
            .find(|j| !is_name(chars[*j]))
            .unwrap_or(chars.len());
        if end == i + 1 {
            out.value.push('$');
            return i + 1;
        }
        let name: String = chars[i + 1..end].iter().collect();
        match args.get(&name) {
            Some(v) => out.value.push_str(v),
            None => out.unresolved.push(name),
        }
        return end;
    }
    // ${...}: find the matching `}`.
    let mut depth = 0;
    let mut close = None;
    for (j, c) in chars.iter().enumerate().skip(i + 1) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(j);
                    break;
                }
            }
            _ => {}
        }
    }
    let Some(close) = close else {
        out.unresolved.push(chars[i..].iter().collect());
        return chars.len();
    };
    let body: String = chars[i + 2..close].iter().collect();
    let name_end = body.find(|c: char| !is_name(c)).unwrap_or(body.len());
    let (name, op) = body.split_at(name_end);
    let value = args.get(name).map(String::as_str);
    let (null_is_unset, op) = match op.strip_prefix(':') {
        Some(rest) => (true, rest),
        None => (false, op),
    };
    let set = value.is_some_and(|v| !(null_is_unset && v.is_empty()));
    let word = || expand(op.get(1..).unwrap_or_default(), args, escape);
    match op.chars().next() {
        None if !null_is_unset => match value {
            Some(v) => out.value.push_str(v),
            None => out.unresolved.push(name.to_owned()),
        },
        Some('-') => {
            if set {
                out.value.push_str(value.unwrap_or_default());
            } else {
                let w = word();
                out.value.push_str(&w.value);
                out.unresolved.extend(w.unresolved);
            }
        }
        Some('+') => {
            if set {
                let w = word();
                out.value.push_str(&w.value);
                out.unresolved.extend(w.unresolved);
            }
        }
        Some('?') => match value.filter(|_| set) {
            Some(v) => out.value.push_str(v),
            None => out.unresolved.push(name.to_owned()),
        },
        _ => out.unresolved.push(format!("{{{body}}}")),
    }
    close + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(text: &str) -> Vec<(String, String)> {
        scan(text)
            .found
            .into_iter()
            .map(|f| (f.location, f.unresolved.unwrap_or(f.image)))
            .collect()
    }

    #[test]
    fn stages_scratch_platform_and_args() {
        let text = "# syntax=docker/dockerfile:1\nARG GO=1.22\nARG BASE=gcr.io/distroless/static\nARG REG\nFROM --platform=$BUILDPLATFORM golang:${GO}-alpine AS Build\nRUN go build\nFROM build AS test\nFROM ${BASE}:nonroot\nCOPY --from=build /app /app\nFROM scratch\nFROM ${REG:-docker.io}/library/busybox:1.36\nFROM $REG/x\n";
        assert_eq!(
            images(text),
            [
                ("FROM line 5".into(), "golang:1.22-alpine".into()),
                (
                    "FROM line 8".into(),
                    "gcr.io/distroless/static:nonroot".into()
                ),
                (
                    "FROM line 11".into(),
                    "docker.io/library/busybox:1.36".into()
                ),
                (
                    "FROM line 12".into(),
                    "$REG has no default (given by --build-arg at build time)".into()
                ),
            ]
        );
    }

    #[test]
    fn copy_from_and_run_mount_from() {
        let text = "FROM golang:1.22 AS build\nCOPY --from=build /a /b\nCOPY --from=0 /a /b\nCOPY --chown=1 --from=ghcr.io/o/r:1 /x /y\nRUN --mount=type=bind,from=quay.io/m/n:1,target=/m true\nRUN --mount=type=cache,target=/c --mount=from=later,target=/l true\nFROM alpine AS later\n";
        assert_eq!(
            images(text),
            [
                ("FROM line 1".into(), "golang:1.22".into()),
                ("COPY --from line 4".into(), "ghcr.io/o/r:1".into()),
                ("RUN --mount line 5".into(), "quay.io/m/n:1".into()),
                ("FROM line 7".into(), "alpine".into()),
            ]
        );
        let scan = scan(text);
        for f in &scan.found {
            let Edit::Span(r) = &f.edit else { panic!() };
            assert_eq!(&text[r.clone()], f.image);
        }
    }

    #[test]
    fn continuations_comments_escape_and_heredocs() {
        let text = "# escape=`\nFROM `\n  # a comment inside\n\n  mcr.microsoft.com/windows/servercore:ltsc2022 `\n  AS base\nRUN <<EOF\nFROM not-an-image\nEOF\nFROM base\n";
        assert_eq!(
            images(text),
            [(
                "FROM line 2".into(),
                "mcr.microsoft.com/windows/servercore:ltsc2022".into()
            )]
        );
        let scan = scan(text);
        let Edit::Span(r) = &scan.found[0].edit else {
            panic!()
        };
        assert_eq!(
            &text[r.clone()],
            "mcr.microsoft.com/windows/servercore:ltsc2022"
        );
    }

    #[test]
    fn a_quoted_heredoc_marker_is_not_a_heredoc() {
        // BuildKit `heredocsFromLine`: whole words, quotes kept; `"use <<EOF ..."` is one
        // quoted word, so the lines after it are instructions.
        assert_eq!(
            heredoc_words("RUN echo \"use <<EOF to start a heredoc\""),
            []
        );
        assert_eq!(heredoc_words("RUN echo 'x <<EOF'"), []);
        // BuildKit's own cases (`parser/parser_heredoc_test.go` `TestHeredocsFromLine`).
        assert_eq!(heredoc_words("RUN '<<EOF'"), []);
        assert_eq!(heredoc_words("RUN \"<<EOF\""), []);
        assert_eq!(heredoc_words("RUN 4<<EOF"), [("EOF".to_owned(), false)]);
        assert_eq!(
            heredoc_words("RUN <<EOF <<EOF2"),
            [("EOF".to_owned(), false), ("EOF2".to_owned(), false)]
        );
        assert_eq!(heredoc_words("RUN echo a\\ <<EOF"), []);
        // Real heredocs: plain, quoted name, `-`, a file descriptor, two of them.
        assert_eq!(heredoc_words("RUN <<EOF"), [("EOF".to_owned(), false)]);
        assert_eq!(
            heredoc_words("RUN <<-\"END\" cat"),
            [("END".to_owned(), true)]
        );
        assert_eq!(
            heredoc_words("COPY <<a 3<<'b' /dst/"),
            [("a".to_owned(), false), ("b".to_owned(), false)]
        );
        assert_eq!(heredoc_words("RUN cat <<<here"), []);
        // `canContainHeredoc` unwraps ONBUILD (`heredocCompoundDirectives`).
        assert_eq!(
            heredoc_words("onbuild RUN <<EOF"),
            [("EOF".to_owned(), false)]
        );
        assert_eq!(heredoc_words("ONBUILD ENV a=<<EOF"), []);
        // csvvalue's strict fields: quoted, doubled quotes; the errors `csvvalue_test.go`
        // checks (a bare quote, text after a closing quote, an unclosed quote).
        assert_eq!(
            csv_fields("type=bind,\"from=a,b\",\"x=\"\"q\"\"\",\"\""),
            Some(vec![
                "type=bind".to_owned(),
                "from=a,b".to_owned(),
                "x=\"q\"".to_owned(),
                String::new()
            ])
        );
        assert_eq!(csv_fields("a,b\"c"), None);
        assert_eq!(csv_fields("\"a\"b,c"), None);
        assert_eq!(csv_fields("\"a,b"), None);
        let text = "FROM nginx:1 AS build\nRUN echo \"use <<EOF to start a heredoc\"\nCOPY --from=quay.io/a/copied:1 /a /b\nFROM quay.io/a/final:1\n";
        assert_eq!(
            images(text),
            [
                ("FROM line 1".into(), "nginx:1".into()),
                ("COPY --from line 3".into(), "quay.io/a/copied:1".into()),
                ("FROM line 4".into(), "quay.io/a/final:1".into()),
            ]
        );
    }

    #[test]
    fn quoted_references_are_scanned_unquoted_and_say_why_they_are_not_rewritten() {
        let text = "FROM \"quay.io/q/from:1\" AS a\nCOPY --from=\"quay.io/q/quoted:1\" /a /b\nCOPY --from='ghcr.io/o/s:2' /a /b\n";
        let scan = scan(text);
        let got: Vec<(&str, &str)> = scan
            .found
            .iter()
            .map(|f| (f.location.as_str(), f.image.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("FROM line 1", "quay.io/q/from:1"),
                ("COPY --from line 2", "quay.io/q/quoted:1"),
                ("COPY --from line 3", "ghcr.io/o/s:2"),
            ]
        );
        for f in &scan.found {
            let Edit::No(why) = &f.edit else {
                panic!("{f:?}")
            };
            assert!(why.contains("quotes") && !why.contains("ARG"), "{why}");
        }
    }

    #[test]
    fn onbuild_copy_from_and_run_mount_from_are_scanned() {
        let text = "FROM alpine AS base\nONBUILD COPY --from=ghcr.io/o/onb:2 /x /y\nONBUILD COPY --from=base /x /y\nonbuild RUN --mount=type=bind,from=quay.io/m/n:1,target=/m true\nONBUILD COPY --from=$X /x /y\nONBUILD FROM quay.io/not/from:1\n";
        let scan = scan(text);
        let got: Vec<(&str, String)> = scan
            .found
            .iter()
            .map(|f| {
                (
                    f.location.as_str(),
                    f.unresolved.clone().unwrap_or(f.image.clone()),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("FROM line 1", "alpine".into()),
                ("ONBUILD COPY --from line 2", "ghcr.io/o/onb:2".into()),
                ("ONBUILD RUN --mount line 4", "quay.io/m/n:1".into()),
                (
                    "ONBUILD COPY --from line 5",
                    "$X has no default here (a --build-arg or a stage ARG at build time)".into()
                ),
            ]
        );
        for f in &scan.found[..3] {
            let Edit::Span(r) = &f.edit else {
                panic!("{f:?}")
            };
            assert_eq!(&text[r.clone()], f.image);
        }
        assert!(matches!(scan.found[3].edit, Edit::No(_)));
    }

    #[test]
    fn lexer_modifiers() {
        let args: HashMap<String, String> = [
            ("A".to_owned(), "x".to_owned()),
            ("E".to_owned(), String::new()),
        ]
        .into();
        let e = |w: &str| expand(w, &args, '\\');
        assert_eq!(e("${A:-y}").value, "x");
        assert_eq!(e("${E:-y}").value, "y");
        assert_eq!(e("${E-y}").value, "");
        assert_eq!(e("${A:+y}").value, "y");
        assert_eq!(e("\"$A\"'$A'\\$A").value, "x$A$A");
        assert_eq!(e("${U}").unresolved, ["U"]);
    }
}
