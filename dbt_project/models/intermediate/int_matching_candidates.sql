{#- Every dossier a supplier invoice line may belong to, with the evidence for it. A table,
    rebuilt after each ingestion: this is the heavy part (trigram and name searches), and it does
    not depend on accountants' decisions, which int_invoice_lines__matched applies on top at read
    time so that a decision shows at once.

    Candidates always come from equality or trigram-index joins restricted to the line's supplier,
    never from a cross join: rule 1 extracts dossier numbers from the reference with a pattern
    (hash join), rule 2 joins the supplier's own booking references, the rest come from a trigram
    search of the reference (pg_trgm %, served by the GIN index of int_matching_dossier_keys), a traveller
    name token, an open amount of the same supplier, or a sibling line of the same invoice. -#}
{{ config(
    schema='intermediate',
    materialized='table',
    pre_hook="set pg_trgm.similarity_threshold = {{ var('matching_trigram_threshold') }}",
    post_hook="reset pg_trgm.similarity_threshold",
    indexes=[{'columns': ['supplier_code', 'invoice_number', 'line_number', 'candidate_rank']}]
) }}

with lines as (
    select
        supplier_code,
        invoice_number,
        line_number,
        invoice_date,
        currency,
        reference,
        amount_incl_tax,
        -- Spaces, dashes and slashes vary from one supplier's system to the next.
        upper(regexp_replace(coalesce(reference, ''), '[^A-Za-z0-9]', '', 'g')) as ref_norm
    from {{ ref('stg_app__supplier_invoice_lines') }}
),

dossiers as (
    select dossier_number, upper(regexp_replace(dossier_number, '[^A-Za-z0-9]', '', 'g')) as dossier_key
    from {{ ref('stg_app__dossiers') }}
),

-- Rule 1: a dossier number written in the reference, whatever the punctuation.
rule_dossier_number as (
    select distinct l.supplier_code, l.invoice_number, l.line_number, d.dossier_number
    from lines as l
    cross join lateral regexp_matches(l.ref_norm, '{{ var("dossier_number_pattern") }}', 'g') as m(found)
    inner join dossiers as d on d.dossier_key = m.found[1]
),

-- Rule 2: the supplier's own booking reference, only among that supplier's services: another
-- supplier may use the same string for something else.
rule_supplier_reference as (
    select distinct l.supplier_code, l.invoice_number, l.line_number, s.dossier_number
    from lines as l
    inner join {{ ref('stg_app__services') }} as s
        on s.supplier_code = l.supplier_code
        and upper(regexp_replace(s.supplier_reference, '[^A-Za-z0-9]', '', 'g')) = l.ref_norm
    where l.ref_norm <> ''
),

ruled as (
    select supplier_code, invoice_number, line_number from rule_dossier_number
    union
    select supplier_code, invoice_number, line_number from rule_supplier_reference
),

open_lines as (
    select l.*
    from lines as l
    where not exists (
        select 1 from ruled as r
        where r.supplier_code = l.supplier_code and r.invoice_number = l.invoice_number
            and r.line_number = l.line_number
    )
),

-- A mistyped dossier number: trigram neighbours of the reference, same supplier.
by_trigram as (
    select l.supplier_code, l.invoice_number, l.line_number, sd.dossier_number
    from open_lines as l
    inner join {{ ref('int_matching_dossier_keys') }} as sd on sd.supplier_code = l.supplier_code
    -- Only references that look like a number: names and words are searched by token below. A typed
    -- O for a zero is the commonest slip in a number: compared without it. % uses the threshold
    -- set by the pre-hook, served by the trigram index on dossier_key.
    -- The explicit similarity keeps the meaning when the hook's setting is absent (unit tests).
    where l.ref_norm ~ '[0-9]{4}' and translate(l.ref_norm, 'O', '0') % sd.dossier_key
        and similarity(translate(l.ref_norm, 'O', '0'), sd.dossier_key) >= {{ var('matching_trigram_threshold') }}
),

-- A traveller's last name written in the reference (DUPONT/JEAN, Dupont Jean).
reference_tokens as (
    select l.supplier_code, l.invoice_number, l.line_number, t.token
    from open_lines as l
    cross join lateral regexp_split_to_table(app.normalise_text(l.reference), '[^a-z]+') as t(token)
    where {{ dbt.length('t.token') }} >= 2
),

traveller_names as (
    select distinct dossier_number, app.normalise_text(last_name) as name
    from {{ ref('stg_app__travellers') }}
),

by_name as (
    select distinct rt.supplier_code, rt.invoice_number, rt.line_number, tn.dossier_number
    from reference_tokens as rt
    inner join traveller_names as tn on tn.name = rt.token
    inner join {{ ref('int_matching_dossier_keys') }} as sd
        on sd.dossier_number = tn.dossier_number and sd.supplier_code = rt.supplier_code
),

-- Amounts a line of that supplier may carry for a dossier: everything expected, one service,
-- or one price line, in the purchase currency.
amount_targets as (
    select dossier_number, supplier_code, currency, expected_amount as amount
    from {{ ref('int_expected__by_dossier_supplier') }}
    union
    select dossier_number, supplier_code, purchase_currency, sum(purchase_total)
    from {{ ref('dossier_price_lines') }}
    where is_active
    group by dossier_number, supplier_code, service_id, purchase_currency
    union
    select dossier_number, supplier_code, purchase_currency, purchase_total
    from {{ ref('dossier_price_lines') }}
    where is_active
),

by_amount as (
    select distinct l.supplier_code, l.invoice_number, l.line_number, a.dossier_number
    from open_lines as l
    inner join amount_targets as a
        on a.supplier_code = l.supplier_code and a.currency = l.currency and a.amount = l.amount_incl_tax
),

-- Suppliers that invoice dossier by dossier: a line with a useless reference belongs to the
-- dossier the rest of its invoice names, when the invoice names only one.
single_dossier_invoices as (
    select supplier_code, invoice_number, min(dossier_number) as dossier_number
    from (
        select * from rule_dossier_number
        union all
        select * from rule_supplier_reference
    ) as r
    group by supplier_code, invoice_number
    having count(distinct dossier_number) = 1
),

by_sibling as (
    select l.supplier_code, l.invoice_number, l.line_number, s.dossier_number
    from open_lines as l
    inner join single_dossier_invoices as s
        on s.supplier_code = l.supplier_code and s.invoice_number = l.invoice_number
),

pairs as (
    select *, 'dossier_number' as source from rule_dossier_number
    union all
    select *, 'supplier_reference' from rule_supplier_reference
    union all
    select *, 'trigram' from by_trigram
    union all
    select *, 'name' from by_name
    union all
    select *, 'amount' from by_amount
    union all
    select *, 'sibling' from by_sibling
),

evidence as (
    select
        supplier_code,
        invoice_number,
        line_number,
        dossier_number,
        bool_or(source = 'dossier_number') as has_dossier_number,
        bool_or(source = 'supplier_reference') as has_supplier_reference,
        bool_or(source = 'name') as name_found,
        bool_or(source = 'sibling') as sibling_match,
        bool_or(source = 'amount') as amount_exact
    from pairs
    group by supplier_code, invoice_number, line_number, dossier_number
),

features as (
    select
        e.*,
        l.amount_incl_tax,
        case when l.ref_norm = '' then 0 else similarity(
            translate(l.ref_norm, 'O', '0'),
            translate(upper(regexp_replace(e.dossier_number, '[^A-Za-z0-9]', '', 'g')), 'O', '0')
        ) end as reference_similarity,
        (l.invoice_date between sd.first_date - 90 and sd.last_date + 180) as date_plausible,
        sd.dossier_number is not null as supplier_in_dossier
    from evidence as e
    inner join lines as l using (supplier_code, invoice_number, line_number)
    left join {{ ref('int_matching_dossier_keys') }} as sd
        on sd.dossier_number = e.dossier_number and sd.supplier_code = e.supplier_code
),

scored as (
    select
        supplier_code,
        invoice_number,
        line_number,
        dossier_number,
        case
            when has_dossier_number then 'dossier_number'
            when has_supplier_reference then 'supplier_reference'
            else 'suggested'
        end::text as match_method,
        -- Rules are certain when alone (ambiguity is judged across a line's candidates downstream);
        -- other evidence adds up as independent signals (noisy-or), each weighted by how often it
        -- alone points at the right dossier.
        (case
            when has_dossier_number then 1.0
            when has_supplier_reference then 0.98
            else (1 - (1 - 0.9 * greatest(0, least(1, (reference_similarity - 0.5) / 0.5)))
                * (1 - 0.7 * name_found::int)
                * (1 - 0.85 * sibling_match::int)
                * (1 - 0.6 * amount_exact::int)
                * (1 - 0.3 * coalesce(date_plausible, false)::int))
                -- a dossier without a service of this supplier is a weaker guess
                * (case when supplier_in_dossier then 1 else 0.5 end)
        end)::numeric(5, 4) as score,
        (has_dossier_number or has_supplier_reference) as is_rule,
        reference_similarity::numeric(5, 4) as reference_similarity,
        name_found,
        sibling_match,
        amount_exact,
        coalesce(date_plausible, false) as date_plausible
    from features
),

-- A rule beats any scored guess; within the same tier a close runner-up makes the best candidate
-- doubtful: its confidence is lowered by a share of the runner-up's score. Ranked here, once,
-- without decisions; int_invoice_lines__matched re-ranks only the lines an accountant rejected
-- a candidate of.
ranked as (
    select
        *,
        row_number() over w as candidate_rank,
        case when lead(is_rule) over w = is_rule then lead(score) over w end as runner_up_score
    from scored
    window w as (
        partition by supplier_code, invoice_number, line_number
        order by is_rule desc, score desc, dossier_number
    )
)

select
    *,
    greatest(0, score - {{ var('matching_runner_up_weight') }} * coalesce(runner_up_score, 0))::numeric(5, 4)
        as confidence
from ranked
