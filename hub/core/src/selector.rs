//! Label selectors in their text form (`app=web,tier in (a,b),!legacy`), as the API server
//! parses them: the `labelSelector` query parameter and a `/scale` subresource's
//! `status.selector`, the only selector a custom resource with a scale subresource offers.

use std::fmt;

/// A malformed selector; the text is the requirement that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement: {0}")]
pub struct SelectorSyntax(pub String);

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` (also `key==value`).
    Equal(String, String),
    /// `key!=value`: the label is absent or has another value.
    NotEqual(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)`: the label is absent or has none of the values.
    NotIn(String, Vec<String>),
    /// `key`: the label exists.
    Exists(String),
    /// `!key`: the label does not exist.
    DoesNotExist(String),
}

impl Requirement {
    /// Whether labels, looked up by `get`, satisfy the requirement.
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        match self {
            Requirement::Equal(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEqual(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Equal(k, v) => write!(f, "{k}={v}"),
            Requirement::NotEqual(k, v) => write!(f, "{k}!={v}"),
            Requirement::In(k, vs) => write!(f, "{k} in ({})", vs.join(",")),
            Requirement::NotIn(k, vs) => write!(f, "{k} notin ({})", vs.join(",")),
            Requirement::Exists(k) => write!(f, "{k}"),
            Requirement::DoesNotExist(k) => write!(f, "!{k}"),
        }
    }
}

/// Parses a selector's text into its requirements (all must hold; empty text has none).
pub fn parse(text: &str) -> Result<Vec<Requirement>, SelectorSyntax> {
    split_top_level(text)?.into_iter().map(str::trim).filter(|p| !p.is_empty()).map(parse_requirement).collect()
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(text: &str) -> Result<Vec<&str>, SelectorSyntax> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(SelectorSyntax(text.to_string()));
        }
    }
    if depth != 0 {
        return Err(SelectorSyntax(text.to_string()));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_requirement(part: &str) -> Result<Requirement, SelectorSyntax> {
    let err = || SelectorSyntax(part.to_string());
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(valid_key(key.trim()).ok_or_else(err)?));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(Requirement::NotEqual(valid_key(k.trim()).ok_or_else(err)?, valid_value(v.trim()).ok_or_else(err)?));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement::Equal(valid_key(k.trim()).ok_or_else(err)?, valid_value(v.trim()).ok_or_else(err)?));
    }
    if let Some(open) = part.find('(') {
        let head = part[..open].trim();
        let list = part[open + 1..].strip_suffix(')').ok_or_else(err)?;
        let values = list.split(',').map(|v| valid_value(v.trim()).ok_or_else(err)).collect::<Result<Vec<_>, _>>()?;
        let mut words = head.split_whitespace();
        let key = valid_key(words.next().ok_or_else(err)?).ok_or_else(err)?;
        let op = words.next().ok_or_else(err)?;
        if words.next().is_some() {
            return Err(err());
        }
        return match op {
            "in" => Ok(Requirement::In(key, values)),
            "notin" => Ok(Requirement::NotIn(key, values)),
            _ => Err(err()),
        };
    }
    Ok(Requirement::Exists(valid_key(part).ok_or_else(err)?))
}

/// Label keys: optional DNS prefix + `/` + name of alphanumerics, `-`, `_`, `.`.
fn valid_key(k: &str) -> Option<String> {
    let ok = !k.is_empty()
        && k.len() <= 317
        && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && k.matches('/').count() <= 1
        && !k.ends_with('/');
    ok.then(|| k.to_string())
}

/// Label values may be empty; otherwise alphanumerics, `-`, `_`, `.`.
fn valid_value(v: &str) -> Option<String> {
    let ok = v.len() <= 63 && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    ok.then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operator_parses_and_prints_back() {
        let text = "app=web,tier!=db,env in (a,b),zone notin (x),canary,!legacy";
        let reqs = parse(text).unwrap();
        assert_eq!(reqs.len(), 6);
        assert_eq!(reqs[2], Requirement::In("env".into(), vec!["a".into(), "b".into()]));
        assert_eq!(reqs.iter().map(ToString::to_string).collect::<Vec<_>>().join(","), text);
        assert_eq!(parse("app==web").unwrap(), [Requirement::Equal("app".into(), "web".into())]);
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn requirements_match_labels_as_the_api_server_does() {
        let labels = [("app", "web"), ("env", "a")];
        let get = |k: &str| labels.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let all = |text: &str| parse(text).unwrap().iter().all(|r| r.matches(get));
        assert!(all("app=web,env in (a,b),!legacy,tier!=db,zone notin (x)"));
        assert!(!all("app=web,tier"));
        assert!(!all("env notin (a)"));
    }

    #[test]
    fn malformed_selectors_name_the_requirement() {
        assert_eq!(parse("app=web,env in a,b)").unwrap_err(), SelectorSyntax("app=web,env in a,b)".into()));
        assert_eq!(parse("app=(web").unwrap_err().to_string(), "unable to parse requirement: app=(web");
        assert!(parse("a/b/c=x").is_err());
        assert!(parse("env is (a)").is_err());
    }
}
