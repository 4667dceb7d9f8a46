-- Entry numbers run 1, 2, 3... with no gap per journal and fiscal year (LPF art. A47 A-1: the
-- FEC's EcritureNum is a continuous sequence), and one number is one entry (one date, one
-- source). Returns the journals and years that break either rule.
with entries as (
    select
        journal_code,
        extract(year from entry_date) as fiscal_year,
        entry_number,
        count(distinct {{ dbt.concat(["source_type", "'/'", "source_id"]) }}) as sources
    from {{ ref('accounting_entries') }}
    group by journal_code, extract(year from entry_date), entry_number
)

select journal_code, fiscal_year, min(entry_number) as first_number, max(entry_number) as last_number,
    count(*) as entries, max(sources) as most_sources_on_one_number
from entries
group by journal_code, fiscal_year
having min(entry_number) <> 1 or max(entry_number) <> count(*) or max(sources) > 1
