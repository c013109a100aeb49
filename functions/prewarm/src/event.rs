//! The invocation payload: `{}`, a scheduled EventBridge event, or `{"images": [...]}`
//! (an operator's or another system's list); anything else is refused with the reason.

use serde_json::Value;

/// The trigger and the payload's images, or what is wrong with the payload.
///
/// The trigger is `invocation {}`, `on-demand list` (with the `images` array's strings, not
/// yet parsed) or `schedule` (a "Scheduled Event" envelope); the images are empty but for
/// the on-demand list. Errors start with `unsupported or malformed event`: not a JSON
/// object, `images` not an array of strings, neither `images` nor a `detail-type`, an
/// envelope missing a field, or another detail-type.
pub fn parse_event(event: &Value) -> Result<(String, Vec<String>), String> {
    use ptc_core::events;
    let object = events::object(event)?;
    if object.is_empty() {
        return Ok(("invocation {}".into(), Vec::new()));
    }
    if let Some(images) = object.get("images") {
        return Ok((
            "on-demand list".into(),
            events::string_list(images, "images")?,
        ));
    }
    if !object.contains_key("detail-type") {
        return Err(events::rejected("neither images nor a scheduled event"));
    }
    match events::envelope(event)?.detail_type.as_str() {
        "Scheduled Event" => Ok(("schedule".into(), Vec::new())),
        other => Err(events::rejected(format!(
            "detail-type {other:?} is not one this function handles"
        ))),
    }
}
