//! The state diagrams in `docs/architecture.md` are the domain's state machines: each Mermaid
//! `stateDiagram-v2` block there is marked with the machine it draws
//! (`<!-- state-machine: session -->` on the line before its fence), and its states, initial
//! state and creating method, transitions with their methods, and final states must be exactly
//! those of [`StateMachine`] for that status enum (whose table `transition_tables.rs` checks
//! against the real transition methods). Changing either side alone fails here.

use std::collections::{BTreeMap, BTreeSet};

use parkpay_domain::{PaymentStatus, RefundStatus, SessionStatus, StateMachine};

const ARCHITECTURE: &str = include_str!("../../../docs/architecture.md");
const MARKER: &str = "<!-- state-machine:";

/// A diagram as drawn.
#[derive(Debug, Default, PartialEq, Eq)]
struct Diagram {
    states: BTreeSet<String>,
    /// `[*] --> X : method`.
    initial: Vec<(String, String)>,
    /// `X --> [*]`.
    finals: BTreeSet<String>,
    /// `X --> Y : method`.
    edges: BTreeSet<(String, String, String)>,
}

/// Every marked `stateDiagram-v2` block of `doc`, by machine name. A `stateDiagram-v2` block
/// without a marker, a marker without a block, a machine drawn twice, or a line the parser does
/// not know is an error.
fn diagrams(doc: &str) -> Result<BTreeMap<String, Diagram>, String> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line == "stateDiagram-v2" {
            return Err(format!("line {}: a stateDiagram-v2 block without a state-machine marker", i + 1));
        }
        let Some(rest) = line.strip_prefix(MARKER) else {
            i += 1;
            continue;
        };
        let name = rest.strip_suffix("-->").ok_or_else(|| format!("line {}: malformed marker", i + 1))?.trim();
        if lines.get(i + 1).map(|l| l.trim()) != Some("```mermaid")
            || lines.get(i + 2).map(|l| l.trim()) != Some("stateDiagram-v2")
        {
            return Err(format!("line {}: marker {name} is not followed by ```mermaid and stateDiagram-v2", i + 1));
        }
        let mut d = Diagram::default();
        i += 3;
        loop {
            let Some(l) = lines.get(i).map(|l| l.trim()) else {
                return Err(format!("diagram {name}: no closing fence"));
            };
            i += 1;
            if l == "```" {
                break;
            }
            if l.is_empty() || l.starts_with("%%") || l.starts_with("direction ") {
                continue;
            }
            parse_line(&mut d, l).map_err(|e| format!("diagram {name}, line {i}: {e}: {l:?}"))?;
        }
        if out.insert(name.to_owned(), d).is_some() {
            return Err(format!("diagram {name} is drawn twice"));
        }
    }
    Ok(out)
}

fn parse_line(d: &mut Diagram, line: &str) -> Result<(), String> {
    let (arrow, label) = match line.split_once(" : ") {
        Some((a, l)) => (a, Some(l.trim())),
        None => (line, None),
    };
    let (from, to) = arrow.split_once("-->").ok_or("not a transition")?;
    let (from, to) = (from.trim(), to.trim());
    let name_ok = |s: &str| s == "[*]" || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'));
    if !name_ok(from) || !name_ok(to) {
        return Err("state names are the contract's (SCREAMING_SNAKE) or [*]".into());
    }
    match (from, to, label) {
        ("[*]", "[*]", _) => Err("[*] --> [*]".into()),
        ("[*]", to, Some(method)) => {
            d.states.insert(to.to_owned());
            d.initial.push((to.to_owned(), method.to_owned()));
            Ok(())
        }
        ("[*]", _, None) => Err("the initial transition names the creating method".into()),
        (from, "[*]", None) => {
            d.states.insert(from.to_owned());
            d.finals.insert(from.to_owned());
            Ok(())
        }
        (_, "[*]", Some(_)) => Err("a final marker carries no label".into()),
        (_, _, None) => Err("a transition names its method".into()),
        (from, to, Some(method)) => {
            d.states.insert(from.to_owned());
            d.states.insert(to.to_owned());
            if !d.edges.insert((from.to_owned(), to.to_owned(), method.to_owned())) {
                return Err("drawn twice".into());
            }
            Ok(())
        }
    }
}

/// The diagram `S`'s table says should be drawn.
fn expected<S: StateMachine>() -> Diagram {
    Diagram {
        states: S::STATES.iter().map(|s| s.name().to_owned()).collect(),
        initial: vec![(S::INITIAL.name().to_owned(), S::CREATED_BY.to_owned())],
        finals: S::STATES.iter().filter(|s| s.is_final()).map(|s| s.name().to_owned()).collect(),
        edges: S::TRANSITIONS.iter().map(|e| (e.from.name().into(), e.to.name().into(), e.action.into())).collect(),
    }
}

/// Every difference between what `doc` draws and the domain, one line each.
fn differences(doc: &str) -> Vec<String> {
    let drawn = match diagrams(doc) {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let want = [
        (SessionStatus::NAME, expected::<SessionStatus>()),
        (PaymentStatus::NAME, expected::<PaymentStatus>()),
        (RefundStatus::NAME, expected::<RefundStatus>()),
    ];
    let mut out = Vec::new();
    for name in drawn.keys() {
        if !want.iter().any(|(n, _)| n == name) {
            out.push(format!("diagram {name}: no such state machine in the domain"));
        }
    }
    for (name, want) in want {
        let Some(got) = drawn.get(name) else {
            out.push(format!("no diagram for the {name} state machine"));
            continue;
        };
        let diff = |what: &str, got: &dyn std::fmt::Debug, want: &dyn std::fmt::Debug| {
            format!("{name}: {what}: drawn {got:?}, domain {want:?}")
        };
        if got.states != want.states {
            out.push(diff("states", &got.states, &want.states));
        }
        if got.initial != want.initial {
            out.push(diff("initial state and creating method", &got.initial, &want.initial));
        }
        if got.finals != want.finals {
            out.push(diff("final states", &got.finals, &want.finals));
        }
        for e in got.edges.difference(&want.edges) {
            out.push(format!("{name}: drawn but not in the domain: {} --> {} : {}", e.0, e.1, e.2));
        }
        for e in want.edges.difference(&got.edges) {
            out.push(format!("{name}: in the domain but not drawn: {} --> {} : {}", e.0, e.1, e.2));
        }
    }
    out
}

#[test]
fn the_state_diagrams_are_the_domains_state_machines() {
    let diffs = differences(ARCHITECTURE);
    assert!(diffs.is_empty(), "docs/architecture.md and the domain differ:\n{}", diffs.join("\n"));
}

/// The comparison catches each kind of drift (so the test above can fail).
#[test]
fn a_changed_diagram_is_caught() {
    let cases: [(&str, &str, &str); 7] = [
        ("a transition removed", "    PENDING --> FAILED : fail\n", ""),
        (
            "a transition added",
            "    PENDING --> FAILED : fail\n",
            "    PENDING --> FAILED : fail\n    SUCCESS --> FAILED : fail\n",
        ),
        ("a method renamed", "PENDING_PAYMENT --> CANCELLED : cancel", "PENDING_PAYMENT --> CANCELLED : abort"),
        ("a state renamed", "PAID --> REFUNDED : record_refund", "PAID --> FULLY_REFUNDED : record_refund"),
        ("the initial method", "[*] --> PENDING_PAYMENT : book", "[*] --> PENDING_PAYMENT : create"),
        ("a final marker dropped", "    CANCELLED --> [*]\n", ""),
        ("a marker dropped", "<!-- state-machine: refund -->\n", ""),
    ];
    for (what, from, to) in cases {
        assert!(ARCHITECTURE.contains(from), "{what}: docs/architecture.md has no {from:?}");
        let changed = ARCHITECTURE.replacen(from, to, 1);
        assert!(!differences(&changed).is_empty(), "{what}: not caught");
    }
}
