//! Object handlers: list, get, create, replace, patch, delete, deletecollection; and the JSON
//! rendering of objects and lists.

use std::borrow::Cow;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::patch::{self, PatchError, PatchKind};
use crate::resources::ResourceDef;
use crate::router::{Params, Target};
use crate::selector::{FieldSelector, LabelSelector, Selectors};
use crate::store::{Obj, WriteMode, set_type_meta};
use crate::{AppState, meta};

/// The object with the served kind/apiVersion (differs only for versions sharing storage).
pub(crate) fn typed<'a>(def: &ResourceDef, obj: &'a Value) -> Cow<'a, Value> {
    let api_version = def.api_version();
    if obj.get("kind").and_then(Value::as_str) == Some(def.kind)
        && obj.get("apiVersion").and_then(Value::as_str) == Some(api_version.as_str())
    {
        Cow::Borrowed(obj)
    } else {
        let mut o = obj.clone();
        crate::convert::convert(def, &mut o);
        set_type_meta(&mut o, def);
        Cow::Owned(o)
    }
}

/// A JSON response.
pub(crate) fn json_response(code: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (code, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => ApiError::server(500, format!("encoding response: {e}")).into_response(),
    }
}

fn object_response(code: StatusCode, def: &ResourceDef, obj: &Value) -> Response {
    json_response(code, typed(def, obj).as_ref())
}

/// Serialises an object without `kind`/`apiVersion`, as list items appear on the wire.
struct ListItem<'a>(Cow<'a, Value>);

impl Serialize for ListItem<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_ref().as_object() {
            Some(map) => {
                let mut m = s.serialize_map(None)?;
                for (k, v) in map.iter().filter(|(k, _)| !matches!(k.as_str(), "kind" | "apiVersion")) {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
            None => self.0.as_ref().serialize(s),
        }
    }
}

/// A `<Kind>List` response.
pub(crate) fn list_response(def: &ResourceDef, items: &[Obj], rv: u64, continue_token: Option<String>) -> Response {
    let items: Vec<ListItem<'_>> = items.iter().map(|o| ListItem(typed(def, o))).collect();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = continue_token {
        metadata["continue"] = json!(c);
    }
    let body = json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": metadata});
    // Items are serialised separately so 50,000 pods are not cloned into one Value.
    let mut out = match serde_json::to_vec(&body) {
        Ok(v) => v,
        Err(e) => return ApiError::server(500, e.to_string()).into_response(),
    };
    out.pop();
    out.extend_from_slice(b",\"items\":");
    if let Err(e) = serde_json::to_writer(&mut out, &items) {
        return ApiError::server(500, e.to_string()).into_response();
    }
    out.push(b'}');
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], out).into_response()
}

/// Label and field selectors from the query.
pub(crate) fn selectors(def: &ResourceDef, params: &Params) -> Result<Selectors, ApiError> {
    let labels = LabelSelector::parse(params.get("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fields = FieldSelector::parse(
        params.get("fieldSelector").unwrap_or(""),
        crate::selector::extra_fields(def.group, def.plural),
    )
    .map_err(|e| ApiError::bad_request(format!("unable to parse fieldSelector: {e}")))?;
    Ok(Selectors { labels, fields })
}

/// GET on a collection.
pub(crate) fn list(state: &AppState, t: &Target, params: &Params, table: bool) -> Result<Response, ApiError> {
    let sel = selectors(t.def, params)?;
    let limit = params.get("limit").and_then(|l| l.parse().ok());
    let page = state.store.list(t.def.storage, t.ns.as_deref(), &sel, limit, params.get("continue"))?;
    if table {
        return Ok(crate::table::response(t.def, &page.items, page.rv, page.continue_token));
    }
    Ok(list_response(t.def, &page.items, page.rv, page.continue_token))
}

/// GET on an object.
pub(crate) fn get(
    state: &AppState,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    table: bool,
) -> Result<Response, ApiError> {
    let ns = if def.namespaced { ns } else { "" };
    let obj = state.store.get(def.storage, ns, name).ok_or_else(|| ApiError::not_found(def.group, def.plural, name))?;
    if table {
        let rv = meta::resource_version(&obj).unwrap_or(0);
        return Ok(crate::table::response(def, &[obj], rv, None));
    }
    Ok(object_response(StatusCode::OK, def, &obj))
}

fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let v = patch::parse_json_or_yaml(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !v.is_object() {
        return Err(ApiError::bad_request("the request body must be a JSON object"));
    }
    Ok(v)
}

/// Rejects bodies of another kind and applies the defaults and validation the real server does
/// for the fields scalehub relies on.
fn validate(def: &ResourceDef, obj: &mut Value) -> Result<(), ApiError> {
    if let Some(kind) = obj.get("kind").and_then(Value::as_str)
        && kind != def.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            def.kind
        )));
    }
    if !def.scale {
        return Ok(());
    }
    let name = meta::name(obj).to_string();
    let invalid = |msg: &str| {
        ApiError::invalid(format!("{} \"{name}\" is invalid: {msg}", def.kind))
            .with_details(def.group, def.plural, &name)
    };
    if obj.pointer("/spec/replicas").is_none_or(Value::is_null) {
        obj["spec"]["replicas"] = json!(1);
    }
    match obj.pointer("/spec/replicas").and_then(Value::as_i64) {
        Some(r) if r >= 0 => {}
        _ => return Err(invalid("spec.replicas: Invalid value: must be greater than or equal to 0")),
    }
    let Some(selector) = obj.pointer("/spec/selector").filter(|s| s.is_object()) else {
        return Err(invalid("spec.selector: Required value"));
    };
    let labels = obj.pointer("/spec/template/metadata/labels").cloned().unwrap_or(json!({}));
    if let Some(ml) = selector.get("matchLabels").and_then(Value::as_object)
        && ml.iter().any(|(k, v)| labels.get(k) != Some(v))
    {
        return Err(invalid(
            "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`",
        ));
    }
    Ok(())
}

/// POST on a collection.
pub(crate) fn create(
    state: &AppState,
    def: &ResourceDef,
    ns: &str,
    params: &Params,
    body: &[u8],
) -> Result<Response, ApiError> {
    let mut obj = decode(body)?;
    validate(def, &mut obj)?;
    let created = state.store.create(def, ns, obj, params.dry_run())?;
    Ok(object_response(StatusCode::CREATED, def, &created))
}

fn check_rv(def: &ResourceDef, name: &str, old: &Value, new: &Value) -> Result<(), ApiError> {
    match meta::meta_str(new, "resourceVersion").filter(|rv| !rv.is_empty()) {
        Some(rv) if Some(rv) != meta::meta_str(old, "resourceVersion") => {
            Err(ApiError::conflict(def.group, def.plural, name))
        }
        _ => Ok(()),
    }
}

/// PUT on an object or its status: unconditional without a resourceVersion, else optimistic.
pub(crate) fn replace(
    state: &AppState,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    mode: WriteMode,
    params: &Params,
    body: &[u8],
) -> Result<Response, ApiError> {
    let mut obj = decode(body)?;
    if !meta::name(&obj).is_empty() && meta::name(&obj) != name {
        return Err(ApiError::bad_request("the name of the object does not match the name on the URL"));
    }
    if mode == WriteMode::Main {
        validate(def, &mut obj)?;
    }
    let (out, _) = state.store.write(def, ns, name, mode, false, params.dry_run(), |old| {
        if let Some(old) = old {
            check_rv(def, name, old, &obj)?;
        }
        Ok(obj)
    })?;
    Ok(object_response(StatusCode::OK, def, &out))
}

/// PATCH on an object or its status, in any of the four patch types.
#[allow(clippy::too_many_arguments)]
pub(crate) fn patch(
    state: &AppState,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    mode: WriteMode,
    params: &Params,
    content_type: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let kind =
        PatchKind::from_content_type(content_type).ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
    let apply = kind == PatchKind::Apply;
    if apply && params.get("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError::invalid(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    let (out, created) =
        state.store.write(def, ns, name, mode, apply && mode == WriteMode::Main, params.dry_run(), |old| {
            let base = match old {
                // Patches apply to the object as this version sees it.
                Some(o) => typed(def, o).into_owned(),
                None => json!({"metadata": {"name": name}}),
            };
            let mut patched = patch::apply_patch(kind, &base, body).map_err(|e| match e {
                PatchError::Decode(m) => ApiError::bad_request(m),
                PatchError::Apply(m) => ApiError::invalid(m),
            })?;
            if let Some(old) = old {
                check_rv(def, name, old, &patched)?;
            }
            if apply {
                let applied = patch::parse_json_or_yaml(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
                let manager = params.get("fieldManager").unwrap_or_default();
                crate::ssa::record_apply(
                    def,
                    old.map(|o| o.as_ref()),
                    &mut patched,
                    &applied,
                    manager,
                    params.flag("force"),
                )?;
            }
            if mode == WriteMode::Main {
                validate(def, &mut patched)?;
            }
            Ok(patched)
        })?;
    Ok(object_response(if created { StatusCode::CREATED } else { StatusCode::OK }, def, &out))
}

/// DELETE on an object; honours `preconditions.resourceVersion` in DeleteOptions.
pub(crate) fn delete(
    state: &AppState,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    params: &Params,
    body: &[u8],
) -> Result<Response, ApiError> {
    let opts: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let precondition = opts.pointer("/preconditions/resourceVersion").and_then(Value::as_str);
    let dry_run =
        params.dry_run() || opts.get("dryRun").and_then(Value::as_array).is_some_and(|a| a.iter().any(|v| v == "All"));
    let gone = state.store.delete(def, ns, name, precondition, dry_run)?;
    Ok(object_response(StatusCode::OK, def, &gone))
}

/// DELETE on a collection: deletes every object matching the selectors; returns them as a list.
pub(crate) fn delete_collection(state: &AppState, t: &Target, params: &Params) -> Result<Response, ApiError> {
    let sel = selectors(t.def, params)?;
    let page = state.store.list(t.def.storage, t.ns.as_deref(), &sel, None, None)?;
    let mut gone = Vec::with_capacity(page.items.len());
    for obj in &page.items {
        let ns = meta::meta_str(obj, "namespace").unwrap_or("");
        if let Ok(o) = state.store.delete(t.def, ns, meta::name(obj), None, params.dry_run()) {
            gone.push(o);
        }
    }
    Ok(list_response(t.def, &gone, state.store.current_rv(), None))
}
