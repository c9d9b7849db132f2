//! The catalogue as a whole: [`check_catalogue`] checks the references between its
//! mappings, [`plan`] orders the mappings of a run (parents first, bringing in the
//! mappings a named one references).

use crate::error::{Error, Result};
use crate::registered::Registered;
use crate::spec::{MappingSpec, TargetSpec};

/// Checks the references between the mappings of `catalogue`: a target column may
/// reference another mapping's target (`references: g_customer.id`); that table
/// must exist, the column must be its whole primary key and of the same SQLite
/// type, and the references between mappings must form no cycle. `cargo xtask gen`
/// runs the same rules on the YAML mappings; `data-sync` runs this one on its
/// whole catalogue at start, so a derive is checked too.
///
/// # Errors
///
/// [`Error::Catalogue`], naming every problem found.
pub fn check_catalogue(catalogue: &[Registered]) -> Result<()> {
    let mut problems = Vec::new();
    for mapping in catalogue {
        let spec = mapping.spec;
        for target in spec.targets {
            for column in target.columns {
                let Some(reference) = &column.references else {
                    continue;
                };
                if own_target(spec, reference.table) {
                    continue;
                }
                let Some((parent_spec, parent)) = owner_of(catalogue, reference.table) else {
                    problems.push(format!(
                        "mapping `{}`: `{}.{}` references `{}`, which no mapping of the catalogue has as a target",
                        spec.name, target.name, column.name, reference.table
                    ));
                    continue;
                };
                let Some(parent_column) = parent
                    .columns
                    .iter()
                    .find(|candidate| candidate.name == reference.column)
                else {
                    problems.push(format!(
                        "mapping `{}`: `{}.{}` references `{}.{}`, but target `{}` of mapping `{}` has no column `{}`",
                        spec.name,
                        target.name,
                        column.name,
                        reference.table,
                        reference.column,
                        parent.name,
                        parent_spec.name,
                        reference.column
                    ));
                    continue;
                };
                let key_columns = parent.columns.iter().filter(|c| c.primary_key).count();
                if !parent_column.primary_key || key_columns != 1 {
                    problems.push(format!(
                        "mapping `{}`: `{}.{}` references `{}.{}`, which is not the whole primary key of `{}` (mapping `{}`)",
                        spec.name,
                        target.name,
                        column.name,
                        reference.table,
                        reference.column,
                        parent.name,
                        parent_spec.name
                    ));
                    continue;
                }
                if parent_column.sqlite_type != column.sqlite_type {
                    problems.push(format!(
                        "mapping `{}`: `{}.{}` is {} but `{}.{}` (mapping `{}`) is {}: a reference must link columns of one type",
                        spec.name,
                        target.name,
                        column.name,
                        column.sqlite_type,
                        parent.name,
                        parent_column.name,
                        parent_spec.name,
                        parent_column.sqlite_type
                    ));
                }
            }
        }
    }
    if let Some(cycle) = cycle(catalogue) {
        problems.push(format!(
            "`references` form a cycle between mappings: {}",
            cycle.join(" -> ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Catalogue {
            message: problems.join("; "),
        })
    }
}

/// The mappings of a run: `selected` and every mapping of `catalogue` they reference,
/// directly or not, and for a capture mapping every capture mapping that
/// references it, each once, parents before children (otherwise in catalogue
/// order). Each comes with the name of the mapping that brought it in, `None` for
/// one of `selected`. `selected` must come from a catalogue that passed
/// [`check_catalogue`].
pub fn plan(
    catalogue: &[Registered],
    selected: &[&Registered],
) -> Vec<(Registered, Option<&'static str>)> {
    let mut wanted: Vec<(Registered, Option<&'static str>)> =
        selected.iter().map(|mapping| (**mapping, None)).collect();
    let mut index = 0;
    while index < wanted.len() {
        let (mapping, _) = wanted[index];
        let mut linked = parents(catalogue, mapping.spec);
        // Capture mappings linked by references read one replication slot: the
        // mappings that reference one come along too.
        if mapping.spec.source.capture.is_some() {
            linked.extend(catalogue.iter().filter(|other| {
                other.spec.source.capture.is_some()
                    && parents(catalogue, other.spec)
                        .iter()
                        .any(|parent| parent.spec.name == mapping.spec.name)
            }));
        }
        for other in linked {
            if !wanted
                .iter()
                .any(|(known, _)| known.spec.name == other.spec.name)
            {
                wanted.push((*other, Some(mapping.spec.name)));
            }
        }
        index += 1;
    }
    // Parents first; catalogue order otherwise.
    wanted.sort_by_key(|(mapping, _)| {
        catalogue
            .iter()
            .position(|known| known.spec.name == mapping.spec.name)
    });
    let mut ordered: Vec<(Registered, Option<&'static str>)> = Vec::with_capacity(wanted.len());
    while !wanted.is_empty() {
        let ready = wanted
            .iter()
            .position(|(mapping, _)| {
                parents(catalogue, mapping.spec).iter().all(|parent| {
                    ordered
                        .iter()
                        .any(|(done, _)| done.spec.name == parent.spec.name)
                })
            })
            // A cycle (which `check_catalogue` refuses): keep catalogue order.
            .unwrap_or(0);
        ordered.push(wanted.remove(ready));
    }
    ordered
}

/// `mappings` (a run's, in the order [`plan`] gives) in groups linked by references
/// across mappings, directly or not, each in run order; a mapping linked to none is
/// a group of its own. `follow` follows each group from one replication slot.
pub fn linked_groups(catalogue: &[Registered], mappings: &[Registered]) -> Vec<Vec<Registered>> {
    let linked = |a: &Registered, b: &Registered| {
        parents(catalogue, a.spec)
            .iter()
            .any(|parent| parent.spec.name == b.spec.name)
            || parents(catalogue, b.spec)
                .iter()
                .any(|parent| parent.spec.name == a.spec.name)
    };
    let mut done = vec![false; mappings.len()];
    let mut groups = Vec::new();
    for start in 0..mappings.len() {
        if done[start] {
            continue;
        }
        done[start] = true;
        let mut group = vec![start];
        let mut next = 0;
        while next < group.len() {
            let current = &mappings[group[next]];
            for (other, mapping) in mappings.iter().enumerate() {
                if !done[other] && linked(current, mapping) {
                    done[other] = true;
                    group.push(other);
                }
            }
            next += 1;
        }
        group.sort_unstable();
        groups.push(group.into_iter().map(|index| mappings[index]).collect());
    }
    groups
}

/// Whether `spec` references a target of another mapping of `catalogue`, or a
/// mapping of `catalogue` references one of its targets: then it is synced in a
/// transaction whose foreign keys are checked at its commit (see `sync::group`).
pub(crate) fn is_linked(catalogue: &[Registered], spec: &MappingSpec) -> bool {
    !parents(catalogue, spec).is_empty()
        || catalogue.iter().any(|other| {
            other.spec.name != spec.name
                && parents(catalogue, other.spec)
                    .iter()
                    .any(|parent| parent.spec.name == spec.name)
        })
}

/// The mappings of `catalogue` whose targets `spec` references, each once.
pub(crate) fn parents<'a>(catalogue: &'a [Registered], spec: &MappingSpec) -> Vec<&'a Registered> {
    let mut parents: Vec<&Registered> = Vec::new();
    for column in spec.targets.iter().flat_map(|target| target.columns) {
        let Some(reference) = &column.references else {
            continue;
        };
        if own_target(spec, reference.table) {
            continue;
        }
        if let Some(parent) = catalogue
            .iter()
            .find(|other| other.spec.name != spec.name && own_target(other.spec, reference.table))
            && !parents
                .iter()
                .any(|known| known.spec.name == parent.spec.name)
        {
            parents.push(parent);
        }
    }
    parents
}

/// Whether `table` is one of `spec`'s targets.
fn own_target(spec: &MappingSpec, table: &str) -> bool {
    spec.targets.iter().any(|target| target.name == table)
}

/// The mapping of `catalogue` that has target `table`, and that target.
fn owner_of<'a>(
    catalogue: &'a [Registered],
    table: &str,
) -> Option<(&'a MappingSpec, &'a TargetSpec)> {
    catalogue.iter().find_map(|mapping| {
        mapping
            .spec
            .targets
            .iter()
            .find(|target| target.name == table)
            .map(|target| (mapping.spec, target))
    })
}

/// The first cycle of references between mappings, as mapping names from and back
/// to its first member in catalogue order.
fn cycle(catalogue: &[Registered]) -> Option<Vec<&'static str>> {
    for start in catalogue {
        let mut stack = vec![vec![start]];
        let mut seen: Vec<&str> = Vec::new();
        while let Some(path) = stack.pop() {
            let last = path[path.len() - 1];
            for parent in parents(catalogue, last.spec) {
                if parent.spec.name == start.spec.name {
                    let mut names: Vec<&'static str> =
                        path.iter().map(|mapping| mapping.spec.name).collect();
                    names.push(start.spec.name);
                    return Some(names);
                }
                if !seen.contains(&parent.spec.name) {
                    seen.push(parent.spec.name);
                    let mut longer = path.clone();
                    longer.push(parent);
                    stack.push(longer);
                }
            }
        }
    }
    None
}
