//! YAML text of a [`Json`] tree, for the snapshots.
//!
//! insta's own YAML writer goes through serde, where an exact amount (a serde_json raw value)
//! shows as serde_json's private wrapper struct; this writer prints each number's text as is.

use crate::json::Json;

/// The block-style YAML of `json`, ending with a newline.
pub fn to_yaml(json: &Json) -> String {
    let mut out = String::new();
    match json {
        Json::Object(members) if !members.is_empty() => object(members, 0, &mut out),
        Json::Array(items) if !items.is_empty() => array(items, 0, &mut out),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    out
}

fn object(members: &[(String, Json)], indent: usize, out: &mut String) {
    for (index, (key, value)) in members.iter().enumerate() {
        // The first member of an array item continues the `- ` line.
        if !(index == 0 && out.ends_with("- ")) {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&string(key));
        out.push(':');
        nested(value, indent, out);
    }
}

fn array(items: &[Json], indent: usize, out: &mut String) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        match item {
            Json::Object(members) if !members.is_empty() => object(members, indent + 2, out),
            Json::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                array(inner, indent + 2, out);
            }
            scalar => {
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
    }
}

fn nested(value: &Json, indent: usize, out: &mut String) {
    match value {
        Json::Object(members) if !members.is_empty() => {
            out.push('\n');
            object(members, indent + 2, out);
        }
        Json::Array(items) if !items.is_empty() => {
            out.push('\n');
            array(items, indent + 2, out);
        }
        scalar => {
            out.push(' ');
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
}

fn inline(json: &Json) -> String {
    match json {
        Json::Null => "null".into(),
        Json::Bool(value) => value.to_string(),
        Json::Number(text) => text.clone(),
        Json::String(value) => string(value),
        Json::Array(_) => "[]".into(),
        Json::Object(_) => "{}".into(),
    }
}

/// A string scalar, quoted by the YAML library where YAML needs it.
fn string(value: &str) -> String {
    serde_norway::to_string(value)
        .expect("a string serializes")
        .trim_end_matches('\n')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_as_the_same_value() {
        let text =
            r#"{"a":12345678901234.56,"b":[{"c":"x: y","d":[]},[1,"2"],null],"e":{},"f":"true"}"#;
        let json = Json::parse(text).unwrap();
        let yaml = to_yaml(&json);
        assert!(yaml.contains("a: 12345678901234.56\n"), "{yaml}");
        let back: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
    }
}
