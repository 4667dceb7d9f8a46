{#- The supplier invoice lines with their reference normalised, and the dossiers the rules name
    for them: (1) a dossier number in the reference, as written or repaired when the repair has
    one reading only; (2) the supplier's own booking reference. The CTEs `lines`, `repaired`,
    `dossiers`, `rule_dossier_number`, `rule_supplier_reference` and `rule_pairs`, shared by
    int_matching_candidates (the rules' candidates, the lines left to the clues) and
    int_matching_open_amounts (what the rules already found invoiced): one definition, so both
    read the same rules. `lines_where`: a condition on the lines' keys (supplier_code,
    invoice_number, line_number) keeping only some of them (the incremental candidates' lines to
    recompute); none for every line.

    Every line: each dossier's and each service's normalised key is computed and hash- or
    merge-joined with the lines'. Some lines (an incremental build's few thousand): each line's
    keys are looked up, through the expression indexes of migration 0031 on app.dossiers and
    app.services, whose expressions these are to the character; keying 1 M dossiers and 2.95 M
    services to join them with 5,305 lines took ~16 s at 1,000,000 dossiers (docs/dbt.md). The
    lookups are lateral subqueries fenced by `offset 0`, so that the planner cannot flatten them
    into a join (the models that read this run without nested loops otherwise). -#}
{% macro matching_rule_ctes(lines_where=none) %}
lines as (
    select
        supplier_code,
        invoice_number,
        line_number,
        kind,
        invoice_date,
        currency,
        reference,
        amount_incl_tax,
        -- Spaces, dashes and slashes vary from one supplier's system to the next.
        upper(regexp_replace(coalesce(reference, ''), '[^A-Za-z0-9]', '', 'g')) as ref_norm
    from {{ ref('stg_app__supplier_invoice_lines') }}
    {% if lines_where is not none %}
    where {{ lines_where }}
    {% endif %}
),

-- The reference as a dossier number someone retyped: a letter O where a zero is meant (no dossier
-- number holds an O) and the two-digit year (BK-26-000123) written out. Both repairs have one
-- reading only, so what they find is as certain as a number written right.
repaired as (
    select
        *,
        regexp_replace(
            translate(ref_norm, 'O', '0'), '{{ var("dossier_number_short_year") }}', 'BK20\1\2', 'g'
        ) as ref_fixed
    from lines
),

{% if lines_where is none -%}
dossiers as (
    select dossier_number, upper(regexp_replace(dossier_number, '[^A-Za-z0-9]', '', 'g')) as dossier_key
    from {{ ref('stg_app__dossiers') }}
),
{%- endif %}

-- Rule 1: a dossier number written in the reference, whatever the punctuation, as written or
-- repaired.
rule_dossier_number as (
    select l.supplier_code, l.invoice_number, l.line_number, d.dossier_number, bool_or(m.as_written) as as_written
    from repaired as l
    cross join lateral (
        select f.found[1], true from regexp_matches(l.ref_norm, '{{ var("dossier_number_pattern") }}', 'g') as f(found)
        union all
        select f.found[1], false from regexp_matches(l.ref_fixed, '{{ var("dossier_number_pattern") }}', 'g') as f(found)
    ) as m(found, as_written)
    {% if lines_where is none -%}
    inner join dossiers as d on d.dossier_key = m.found
    {%- else -%}
    cross join lateral (
        select k.dossier_number from {{ ref('stg_app__dossiers') }} as k
        where upper(regexp_replace(k.dossier_number, '[^A-Za-z0-9]', '', 'g')) = m.found
        offset 0
    ) as d
    {%- endif %}
    group by l.supplier_code, l.invoice_number, l.line_number, d.dossier_number
),

-- Rule 2: the supplier's own booking reference, only among that supplier's services: another
-- supplier may use the same string for something else.
rule_supplier_reference as (
    select distinct l.supplier_code, l.invoice_number, l.line_number, s.dossier_number
    from lines as l
    {% if lines_where is none -%}
    inner join {{ ref('stg_app__services') }} as s
        on s.supplier_code = l.supplier_code
        and upper(regexp_replace(s.supplier_reference, '[^A-Za-z0-9]', '', 'g')) = l.ref_norm
    {%- else -%}
    cross join lateral (
        select k.dossier_number from {{ ref('stg_app__services') }} as k
        where k.supplier_code = l.supplier_code
            and upper(regexp_replace(k.supplier_reference, '[^A-Za-z0-9]', '', 'g')) = l.ref_norm
        offset 0
    ) as s
    {%- endif %}
    where l.ref_norm <> ''
),

rule_pairs as (
    select supplier_code, invoice_number, line_number, dossier_number from rule_dossier_number
    union
    select supplier_code, invoice_number, line_number, dossier_number from rule_supplier_reference
)
{%- endmacro %}


{#- Each reading one slip of a digit away from the dossier numbers found in `numbers` (a relation
    with supplier_code, invoice_number, line_number, year and digits: a number of 5 to 7 digits
    as written), as a dossier key to look up: a digit put back, one too many taken out, one wrong
    replaced, two neighbours swapped. Shared by int_matching_candidates (the clue) and
    int_matching_dirty_lines (which old lines a changed dossier's number may now be near). -#}
{% macro matching_near_keys(numbers) %}
    -- a digit put back at one of the six places
    select r.*, 'BK' || r.year || left(r.digits, p.pos) || g.digit || substr(r.digits, p.pos + 1) as near
    from {{ numbers }} as r
    cross join generate_series(0, 5) as p(pos)
    cross join generate_series(0, 9) as g(digit)
    where {{ dbt.length('r.digits') }} = 5
    union all
    -- one digit too many
    select r.*, 'BK' || r.year || left(r.digits, p.pos) || substr(r.digits, p.pos + 2)
    from {{ numbers }} as r
    cross join generate_series(0, 6) as p(pos)
    where {{ dbt.length('r.digits') }} = 7
    union all
    -- one digit wrong
    select r.*, 'BK' || r.year || left(r.digits, p.pos) || g.digit || substr(r.digits, p.pos + 2)
    from {{ numbers }} as r
    cross join generate_series(0, 5) as p(pos)
    cross join generate_series(0, 9) as g(digit)
    where {{ dbt.length('r.digits') }} = 6 and substr(r.digits, p.pos + 1, 1) <> g.digit::text
    union all
    -- two neighbours swapped
    select r.*, 'BK' || r.year || left(r.digits, p.pos) || substr(r.digits, p.pos + 2, 1)
        || substr(r.digits, p.pos + 1, 1) || substr(r.digits, p.pos + 3)
    from {{ numbers }} as r
    cross join generate_series(0, 4) as p(pos)
    where {{ dbt.length('r.digits') }} = 6 and substr(r.digits, p.pos + 1, 1) <> substr(r.digits, p.pos + 2, 1)
{%- endmacro %}


{#- Of the dossiers `pairs` (a relation: supplier_code, invoice_number, line_number, dossier_number,
    booked_on) finds for each line, those not in `known` (found with more evidence), the
    var('matching_alike_candidates') most recently booked: alike candidates (one clue or none, the
    same score), of which only so many can matter to a line's confidence (docs/dbt.md, "Name
    candidates", "Alike candidates"). Ties on the booking day: the higher number first. -#}
{% macro matching_alike_kept(pairs, known) %}
    select supplier_code, invoice_number, line_number, dossier_number
    from (
        select
            h.supplier_code,
            h.invoice_number,
            h.line_number,
            h.dossier_number,
            row_number() over (
                partition by h.supplier_code, h.invoice_number, h.line_number
                order by h.booked_on desc, h.dossier_number desc
            ) as nth
        from {{ pairs }} as h
        where not exists (
            select 1 from {{ known }} as k
            where k.supplier_code = h.supplier_code and k.invoice_number = h.invoice_number
                and k.line_number = h.line_number and k.dossier_number = h.dossier_number
        )
    ) as alike
    where nth <= {{ var('matching_alike_candidates') }}
{%- endmacro %}
