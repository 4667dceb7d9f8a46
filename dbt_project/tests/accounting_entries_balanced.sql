-- Every entry balances (double entry): the rows returned are the entries whose
-- debits and credits differ. An entry is a journal, a fiscal year and a number.
select
    journal_code,
    extract(year from entry_date) as fiscal_year,
    entry_number,
    sum(debit) as total_debit,
    sum(credit) as total_credit
from {{ ref('accounting_entries') }}
group by journal_code, extract(year from entry_date), entry_number
having sum(debit) <> sum(credit)
