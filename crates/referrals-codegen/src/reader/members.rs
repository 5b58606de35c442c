//! The vendor extensions of the resource schema: filterable, sortable and patchable members
//! (`x-filterable`, `x-sortable`, `x-patchable`), and the status rules (`x-status-rules`),
//! each checked against the schemas it names.

use super::*;

impl<'a> Reader<'a> {
    pub(super) fn filterable(
        &self,
        resource: &str,
        schema: &'a Value,
    ) -> Result<Vec<Filterable>, Error> {
        let Some(entries) = schema.get(FILTERABLE) else {
            return Ok(Vec::new());
        };
        let entries = entries.as_object().ok_or_else(|| {
            self.error(
                resource,
                Some(FILTERABLE),
                &[],
                "must map member paths to `{operators: [...]}`".into(),
            )
        })?;
        let mut found = Vec::new();
        for path in ordered_keys(self.document, resource, FILTERABLE) {
            let Some(entry) = entries.get(&path) else {
                continue;
            };
            let path = &path;
            let fail = |message: String| self.error(resource, Some(FILTERABLE), &[path], message);
            let segments: Vec<String> = path.split('/').map(str::to_owned).collect();
            let (member, array_at) = self.walk(resource, &segments).map_err(&fail)?;
            let MemberType::Scalar(kind) = member else {
                return Err(fail(
                    "the member has no comparison: only a scalar (a string, a value set, a UUID, \
                     a date-time, a date, an integer, a number of `format: double` or `float`, \
                     money or a boolean) can be filtered on"
                        .into(),
                ));
            };
            let Some(entry) = entry.as_object() else {
                return Err(fail("must be `{operators: [...]}`".into()));
            };
            if let Some(unknown) = entry
                .keys()
                .find(|key| !["operators", "lambda"].contains(&key.as_str()))
            {
                return Err(fail(format!(
                    "`{unknown}` is not a key of an entry (operators, lambda)"
                )));
            }
            let operators = operators(entry, &kind).map_err(&fail)?;
            let lambda = lambda(entry, array_at, &segments).map_err(&fail)?;
            found.push(Filterable {
                path: path.clone(),
                segments,
                kind,
                operators,
                lambda,
            });
        }
        Ok(found)
    }

    /// `x-accessors`: each name must map to a path of a member of the resource, outside arrays.
    pub(super) fn accessors(
        &self,
        resource: &str,
        schema: &'a Value,
    ) -> Result<Vec<(String, Vec<String>)>, Error> {
        let Some(entries) = schema.get(ACCESSORS) else {
            return Ok(Vec::new());
        };
        let entries = entries.as_object().ok_or_else(|| {
            let message = "must map accessor names to member paths".to_owned();
            self.error(resource, Some(ACCESSORS), &[], message)
        })?;
        let mut found = Vec::new();
        for name in ordered_keys(self.document, resource, ACCESSORS) {
            let Some(path) = entries.get(&name) else {
                continue;
            };
            let fail = |message: String| self.error(resource, Some(ACCESSORS), &[&name], message);
            let path = path.as_str().ok_or_else(|| {
                fail("must be a member path, such as customerProfile/name".into())
            })?;
            let segments: Vec<String> = path.split('/').map(str::to_owned).collect();
            let (_, array_at) = self.walk(resource, &segments).map_err(&fail)?;
            if array_at.is_some() {
                return Err(fail(format!(
                    "`{path}` passes through an array: an accessor reads one value"
                )));
            }
            found.push((name.clone(), segments));
        }
        Ok(found)
    }

    pub(super) fn sortable(
        &self,
        resource: &str,
        schema: &'a Value,
    ) -> Result<Vec<Sortable>, Error> {
        let Some(entries) = schema.get(SORTABLE) else {
            return Ok(Vec::new());
        };
        let paths = strings(Some(entries)).ok_or_else(|| {
            self.error(
                resource,
                Some(SORTABLE),
                &[],
                "must be a non-empty list of member paths".into(),
            )
        })?;
        let mut found = Vec::new();
        for path in paths {
            let fail = |message: String| {
                self.error(
                    resource,
                    Some(SORTABLE),
                    &[],
                    format!("`{path}`: {message}"),
                )
            };
            let segments: Vec<String> = path.split('/').map(str::to_owned).collect();
            let (member, array_at) = self.walk(resource, &segments).map_err(&fail)?;
            match (member, array_at) {
                (MemberType::Scalar(kind), None) => found.push(Sortable {
                    path,
                    segments,
                    kind,
                }),
                (_, Some(_)) => {
                    return Err(fail("a member inside an array cannot order a list".into()));
                }
                _ => {
                    return Err(fail(
                        "the member has no order: only a scalar (not an object or an array) can \
                         order a list"
                            .into(),
                    ));
                }
            }
        }
        Ok(found)
    }

    pub(super) fn patchable(
        &self,
        resource: &str,
        schema: &'a Value,
    ) -> Result<Vec<Patchable>, Error> {
        let Some(entries) = schema.get(PATCHABLE) else {
            return Ok(Vec::new());
        };
        let entries = entries.as_object().ok_or_else(|| {
            self.error(
                resource,
                Some(PATCHABLE),
                &[],
                "must map JSON Pointers to lists of operations".into(),
            )
        })?;
        let known_ops = self.patch_ops();
        let mut found = Vec::new();
        for pointer in ordered_keys(self.document, resource, PATCHABLE) {
            let Some(ops) = entries.get(&pointer) else {
                continue;
            };
            let pointer = &pointer;
            let fail = |message: String| self.error(resource, Some(PATCHABLE), &[pointer], message);
            let Some(rest) = pointer.strip_prefix('/') else {
                return Err(fail(
                    "a JSON Pointer starts with `/`, as in /details/notes".into(),
                ));
            };
            let mut segments: Vec<String> = rest.split('/').map(str::to_owned).collect();
            let append = segments.last().is_some_and(|last| last == "-");
            if append {
                segments.pop();
            }
            let (_, array_at) = self.walk(resource, &segments).map_err(&fail)?;
            if append && array_at != Some(segments.len()) {
                return Err(fail(format!(
                    "`/-` appends to an array, and `{}` is not one",
                    segments.join("/")
                )));
            }
            if !append && array_at.is_some_and(|at| at < segments.len()) {
                return Err(fail(
                    "a pointer into the items of an array names no one member; patch the array \
                     or append to it with `/-`"
                        .into(),
                ));
            }
            let ops = strings(Some(ops)).ok_or_else(|| {
                fail("must be a non-empty list of operations, such as [replace, add]".into())
            })?;
            for op in &ops {
                if !known_ops.contains(op) {
                    return Err(fail(format!(
                        "`{op}` is not a value of the `JsonPatchOp` schema ({}): add it to its \
                         `enum` (#/components/schemas/JsonPatchOp/enum) if the service accepts it",
                        known_ops.join(", ")
                    )));
                }
                self.operation_fits(op).map_err(&fail)?;
            }
            if append && ops.iter().any(|op| op != "add") {
                return Err(fail("`/-` appends, which only `add` does".into()));
            }
            found.push(Patchable {
                pointer: pointer.clone(),
                segments,
                append,
                ops,
            });
        }
        Ok(found)
    }

    /// Refuses an op that RFC 6902 does not define, or whose members the `JsonPatchOperation`
    /// schema cannot hold (a `value` for `add`, a `from` for `move`; no required `value` for
    /// `remove`).
    pub(super) fn operation_fits(&self, op: &str) -> Result<(), String> {
        const SCHEMA: &str = "#/components/schemas/JsonPatchOperation";
        let Some(takes) = patch_op_takes(op) else {
            return Err(format!(
                "`{op}` is not a JSON Patch operation; RFC 6902 defines add, remove, replace, \
                 move, copy and test: take it out of `JsonPatchOp`'s `enum`"
            ));
        };
        let schema = self.schemas().get("JsonPatchOperation");
        let has = |member: &str| {
            schema
                .and_then(|schema| schema.get("properties"))
                .is_some_and(|properties| properties.get(member).is_some())
        };
        let required = |member: &str| {
            schema
                .and_then(|schema| strings(schema.get("required")))
                .is_some_and(|required| required.iter().any(|name| name == member))
        };
        for member in ["value", "from"] {
            let wanted = takes == member;
            if wanted && !has(member) {
                return Err(format!(
                    "`{op}` takes a `{member}`, and `JsonPatchOperation` has no such member: \
                     add `{member}` to its `properties` ({SCHEMA}/properties)"
                ));
            }
            if !wanted && required(member) {
                return Err(format!(
                    "`{op}` takes no `{member}`, and `JsonPatchOperation` requires one: take \
                     `{member}` out of its `required` ({SCHEMA}/required)"
                ));
            }
        }
        Ok(())
    }

    /// The values of the `JsonPatchOp` schema: the operations that the API accepts at all.
    pub(super) fn patch_ops(&self) -> Vec<String> {
        self.schemas()
            .get("JsonPatchOp")
            .and_then(|schema| strings(schema.get("enum")))
            .unwrap_or_default()
    }

    /// The known values of the open value set `set`.
    pub(super) fn values(&self, set: &str) -> Vec<String> {
        self.open_enums
            .iter()
            .find(|open| open.name == set)
            .map(|open| open.values.clone())
            .unwrap_or_default()
    }

    pub(super) fn status_rules(
        &self,
        resource: &str,
        rules: &Value,
    ) -> Result<(Vec<StatusRule>, (String, String)), Error> {
        let fail = |deeper: &[&str], message: String| {
            self.error(resource, Some(STATUS_RULES), deeper, message)
        };
        let set_of = |member: &str| match self
            .property(resource, member)
            .map(|p| self.member_type(p))
        {
            Some(MemberType::Scalar(Kind::Set(name))) => Ok(name),
            _ => Err(fail(
                &[],
                format!("the rules need a `{member}` member of `{resource}` that is a value set"),
            )),
        };
        let (status_set, substatus_set) = (set_of("status")?, set_of("substatus")?);
        let (statuses, substatuses) = (self.values(&status_set), self.values(&substatus_set));
        let Some(rules) = rules.as_object() else {
            return Err(fail(
                &[],
                "must map statuses to `{to: [...], substatus: [...]}`".into(),
            ));
        };
        let mut found = Vec::new();
        for from in ordered_keys(self.document, resource, STATUS_RULES) {
            let Some(rule) = rules.get(&from) else {
                continue;
            };
            let from = &from;
            let check = |list: &[String], known: &[String], set: &str| match list
                .iter()
                .find(|value| !known.contains(value))
            {
                Some(unknown) => Err(fail(
                    &[from],
                    format!(
                        "`{unknown}` is not a value of `{set}` ({})",
                        known.join(", ")
                    ),
                )),
                None => Ok(()),
            };
            check(std::slice::from_ref(from), &statuses, &status_set)?;
            let to = strings(rule.get("to"))
                .ok_or_else(|| fail(&[from], "`to` must be a non-empty list of statuses".into()))?;
            check(&to, &statuses, &status_set)?;
            let substatus = strings(rule.get("substatus")).ok_or_else(|| {
                fail(
                    &[from],
                    "`substatus` must be a non-empty list of substatuses".into(),
                )
            })?;
            check(&substatus, &substatuses, &substatus_set)?;
            found.push(StatusRule {
                from: from.clone(),
                to,
                substatus,
            });
        }
        if let Some((rule, missing)) = without_rule(&found) {
            return Err(fail(
                &[&rule.from],
                format!("`{missing}` is a status to move to, but has no rule of its own"),
            ));
        }
        Ok((found, (status_set, substatus_set)))
    }
}

/// A rule that moves to a status without a rule of its own, and that status.
fn without_rule(rules: &[StatusRule]) -> Option<(&StatusRule, &String)> {
    rules.iter().find_map(|rule| {
        let missing = rule
            .to
            .iter()
            .find(|to| !rules.iter().any(|other| &other.from == *to))?;
        Some((rule, missing))
    })
}

/// The `operators` of an `x-filterable` entry, each one of OData's comparisons that a member
/// of `kind` has.
fn operators(entry: &Map<String, Value>, kind: &Kind) -> Result<Vec<String>, String> {
    let operators = strings(entry.get("operators"))
        .ok_or("`operators` must be a non-empty list, such as [eq, ne]")?;
    for operator in &operators {
        if !OPERATORS.contains(&operator.as_str()) {
            return Err(format!(
                "`{operator}` is not a comparison operator of OData ({})",
                OPERATORS.join(", ")
            ));
        }
        if ORDERING.contains(&operator.as_str()) && !kind.is_ordered() {
            return Err(format!(
                "`{operator}` compares for order, and {} has none: use eq, ne",
                kind.describe()
            ));
        }
    }
    Ok(operators)
}

/// The `lambda` of an `x-filterable` entry whose path passes through an array at the segment
/// `array_at`, when it does: which segments name the array, and `any` or `all`.
fn lambda(
    entry: &Map<String, Value>,
    array_at: Option<usize>,
    segments: &[String],
) -> Result<Option<(usize, String)>, String> {
    match (entry.get("lambda"), array_at) {
        (None, None) => Ok(None),
        (Some(Value::String(lambda)), Some(at)) if LAMBDAS.contains(&lambda.as_str()) => {
            if at == segments.len() {
                return Err(
                    "a lambda compares a member of the array's items; name one after the array"
                        .into(),
                );
            }
            Ok(Some((at, lambda.clone())))
        }
        (Some(_), Some(_)) => Err("`lambda` must be `any` or `all`".into()),
        (Some(_), None) => Err("`lambda` needs a path through an array".into()),
        (None, Some(at)) => Err(format!(
            "the path passes through the array `{}`: say which lambda compares its items \
             (`lambda: any`)",
            segments[..at].join("/")
        )),
    }
}
