#!lua flags=no-writes
-- Product search in one round trip. Every key shares the `{catalogue}` hash tag of ARGV[1].
-- ARGV: prefix, n, token_1..token_n, last_prefix, category, brand, min_price, max_price,
--       in_stock ('1'/'0'), sort ('relevance'|'price_asc'|'price_desc'), offset, limit,
--       documents ('1'/'0'), prefix_layout (with a last_prefix: the catalogue layout from which
--       it has a set of its own; else '')
-- Returns: { total, exact (1/0), sku_1, ..., sku_k }. With documents '1' instead
-- { total, exact, k, page }: `page` holds each product's entry and availability from the
-- catalogue's documents hash, all joined by newlines (compact JSON has none), which the caller
-- splits and joins into documents. One value to read instead of three per product: reading
-- each value of a reply cost the server more than the rest of the search, and joining them
-- here is one `table.concat` (building each document here, with its availability, cost Redis
-- more than it saved the server). If a product of the page has no document (written by an Ordo
-- that did not store them), { total, exact, k, nil, sku_1, ..., sku_k }, and the caller renders
-- them. The documents come from one HMGET: each `redis.call` from Lua costs about 5 us of
-- Redis's one thread in conversions, so one call for the page, never one per product. Totals
-- are exact below
-- EXACT_UP_TO matches; from there on `total` is a lower bound (shown as "200+"), which is what keeps
-- large result sets cheap: counting every match costs as much as materialising them.
-- Read-only (`no-writes`): no temporary keys, so it runs on replicas and never adds work to the
-- primary's write path. Matches that must be materialised come back with ZINTER/ZUNION, in an
-- order that is the page's (read forwards or backwards) or, when other words' weights or prices
-- rank them, sorted here.
-- Needs Redis 7 (ZINTERCARD, ZINTER, ZUNION, ZMSCORE, SMISMEMBER); no modules.
local p = ARGV[1]
local n = tonumber(ARGV[2])
local i = 3 + n
local prefix, category, brand = ARGV[i], ARGV[i + 1], ARGV[i + 2]
local min_price, max_price, in_stock, sort = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
local offset, limit = tonumber(ARGV[i + 7]), tonumber(ARGV[i + 8])
local documents = ARGV[i + 9] == '1'
local prefix_layout = tonumber(ARGV[i + 10])
local by_price = sort ~= 'relevance'
local ranged = min_price ~= '-inf' or max_price ~= '+inf'
-- Matches are counted exactly up to this bound; beyond it totals are a lower bound.
local EXACT_UP_TO = 200
local CHUNK = 256

-- Words: one sorted set each, scored by weight; the last word also matches as a prefix. A prefix
-- has a set of its own in a catalogue begun with them (ADR 0029); in an older one, a prefix
-- matching several terms is their union (of at most 64), kept here (`prefix_terms`).
local text, prefix_terms = {}, {}
for t = 1, n do text[#text + 1] = p .. ':term:' .. ARGV[2 + t] end
local layout = prefix_layout and tonumber(redis.call('GET', p .. ':layout') or '1')
if prefix ~= '' and layout and layout >= prefix_layout then
  text[#text + 1] = p .. ':prefix:' .. prefix
elseif prefix ~= '' then
  local terms = redis.call('ZRANGEBYLEX', p .. ':terms', '[' .. prefix, '[' .. prefix .. '\255', 'LIMIT', 0, 64)
  if #terms == 0 then return documents and { 0, 1, 0, '' } or { 0, 1 } end
  if #terms == 1 then
    text[#text + 1] = p .. ':term:' .. terms[1]
  else
    for _, term in ipairs(terms) do prefix_terms[#prefix_terms + 1] = p .. ':term:' .. term end
  end
end
-- Filters: facets are sorted sets scored by price, the rest plain sets. Term sets hold only
-- listed products, so `listed` is needed only without words (facets also hold only listed ones).
local facets, filters, is_facet = {}, {}, {}
if category ~= '' then facets[#facets + 1] = p .. ':category:' .. category end
if brand ~= '' then facets[#facets + 1] = p .. ':brand:' .. brand end
for _, k in ipairs(facets) do is_facet[k] = true end
if #text == 0 and #prefix_terms == 0 and #facets == 0 then filters[#filters + 1] = p .. ':listed' end
if in_stock == '1' then filters[#filters + 1] = p .. ':instock' end

local function finish(total, exact, page)
  local out = { total, exact and 1 or 0 }
  if documents then
    out[3] = #page
    local parts = {}
    if #page > 0 then
      local fields = {}
      for _, sku in ipairs(page) do
        fields[#fields + 1] = sku
        fields[#fields + 1] = sku .. ':available'
      end
      parts = redis.call('HMGET', p .. ':documents', unpack(fields))
      for j = 1, #parts do
        if not parts[j] then parts = nil; break end
      end
    end
    if parts then
      out[4] = table.concat(parts, '\n')
      return out
    end
    out[4] = false
  end
  for _, sku in ipairs(page) do out[#out + 1] = sku end
  return out
end

-- Price bounds as numbers, for checking a range.
local lo = min_price == '-inf' and -math.huge or tonumber(min_price)
local hi = max_price == '+inf' and math.huge or tonumber(max_price)

-- The members of `chunk` present in every sorted set of `zkeys` and every set of `skeys`, and,
-- if `check_range`, priced within [lo, hi]. A facet's scores are prices: with one among
-- `zkeys`, its scores are the range check, and the price index is not asked (every score read
-- into Lua costs Redis about a microsecond, ADR 0030).
local function keep(chunk, zkeys, skeys, check_range)
  local ok = {}
  for j = 1, #chunk do ok[j] = true end
  local priced = not check_range
  for _, k in ipairs(zkeys) do
    local scores = redis.call('ZMSCORE', k, unpack(chunk))
    local prices = not priced and is_facet[k]
    for j = 1, #chunk do
      local score = scores[j]
      if not score then
        ok[j] = false
      elseif prices then
        local price = tonumber(score)
        if price < lo or price > hi then ok[j] = false end
      end
    end
    priced = priced or prices
  end
  for _, k in ipairs(skeys) do
    local member = redis.call('SMISMEMBER', k, unpack(chunk))
    for j = 1, #chunk do if member[j] == 0 then ok[j] = false end end
  end
  if not priced then
    local prices = redis.call('ZMSCORE', p .. ':price', unpack(chunk))
    for j = 1, #chunk do
      local price = tonumber(prices[j])
      if not price or price < lo or price > hi then ok[j] = false end
    end
  end
  local out = {}
  for j = 1, #chunk do if ok[j] then out[#out + 1] = chunk[j] end end
  return out
end

-- The page of `matches`, already in the search's order read forwards or backwards.
local function stretch(matches, forwards)
  local page = {}
  for j = offset + 1, math.min(#matches, offset + limit) do
    page[#page + 1] = forwards and matches[j] or matches[#matches + 1 - j]
  end
  return page
end

-- Sorts `rows` ({sku, score}) as the search orders them (ties by SKU, in the same direction as
-- the scores) and answers the page of them from `offset`.
local function page_of(rows, ascending)
  table.sort(rows, function(a, b)
    if a[2] ~= b[2] then
      if ascending then return a[2] < b[2] end
      return a[2] > b[2]
    end
    if ascending then return a[1] < b[1] end
    return a[1] > b[1]
  end)
  local page = {}
  for j = offset + 1, math.min(#rows, offset + limit) do page[#page + 1] = rows[j][1] end
  return finish(#rows, true, page)
end

-- Without words there is no relevance: cheapest first.
local price_order = by_price or (#text == 0 and #prefix_terms == 0)
local descending = sort == 'price_desc'

-- Scores `members` for ordering: price, or relevance (the sum of their word weights, `base`
-- holding what is already known, for example the prefix's).
local function scored(members, base)
  local rows = {}
  for start = 1, #members, CHUNK do
    local chunk = { unpack(members, start, math.min(#members, start + CHUNK - 1)) }
    local total = {}
    for j = 1, #chunk do total[j] = base and base[chunk[j]] or 0 end
    local keys = price_order and { p .. ':price' } or text
    for _, k in ipairs(keys) do
      local s = redis.call('ZMSCORE', k, unpack(chunk))
      for j = 1, #chunk do total[j] = total[j] + (tonumber(s[j]) or 0) end
    end
    for j = 1, #chunk do rows[#rows + 1] = { chunk[j], total[j] } end
  end
  return rows
end

-- A prefix matching several terms: its union, read into memory (summed weights), filtered by
-- everything else, scored, sorted and paged here. Exact totals. Ranked by the prefix's weights
-- alone (no other word, best match first), the union's own order read backwards is the page's,
-- as with ZINTER below: no score to read, nothing to sort.
if #prefix_terms > 0 then
  local in_union_order = not price_order and #text == 0
  local union_args = { 'ZUNION', #prefix_terms }
  for _, k in ipairs(prefix_terms) do union_args[#union_args + 1] = k end
  if not in_union_order then union_args[#union_args + 1] = 'WITHSCORES' end
  local union = redis.call(unpack(union_args))
  local members, base = union, nil
  if not in_union_order then
    members, base = {}, {}
    for j = 1, #union, 2 do
      members[#members + 1] = union[j]
      base[union[j]] = tonumber(union[j + 1])
    end
  end
  local zkeys = {}
  for _, k in ipairs(text) do zkeys[#zkeys + 1] = k end
  for _, k in ipairs(facets) do zkeys[#zkeys + 1] = k end
  local matches = members
  if #zkeys > 0 or #filters > 0 or ranged then
    matches = {}
    for start = 1, #members, CHUNK do
      local chunk = { unpack(members, start, math.min(#members, start + CHUNK - 1)) }
      for _, sku in ipairs(keep(chunk, zkeys, filters, ranged)) do matches[#matches + 1] = sku end
    end
  end
  if in_union_order then return finish(#matches, true, stretch(matches, false)) end
  return page_of(scored(matches, not price_order and base or nil), price_order and not descending)
end

-- Walks an ordered index in chunks (`fetch(start, size)` returns the next chunk), keeping members that
-- pass the other keys, until the page is full or the index ends. Returns the page, the matches
-- seen, and whether the index was exhausted. The first chunk is `first` long (the plan's
-- expected scan, with a margin); each next one is what the page still lacks at the share of
-- matches seen so far: a chunk read past the page is paid for member by member.
local function walk(fetch, zkeys, skeys, check_range, first)
  local page, seen, start = {}, 0, 0
  -- With nothing to check, every member is a match: read just the page, not a whole chunk.
  local checks = #zkeys > 0 or #skeys > 0 or check_range
  local size = checks and first or math.min(CHUNK, offset + limit)
  while #page < limit do
    local chunk = fetch(start, size)
    if #chunk == 0 then return page, seen, true end
    start = start + #chunk
    for _, sku in ipairs(keep(chunk, zkeys, skeys, check_range)) do
      seen = seen + 1
      if seen > offset and #page < limit then page[#page + 1] = sku end
    end
    if checks then
      local wanted = offset + limit - seen
      size = seen == 0 and CHUNK or math.ceil(wanted * start / seen * 1.25) + 8
      size = math.max(16, math.min(CHUNK, size))
    end
  end
  return page, seen, false
end

local function by_rank(key, descending)
  return function(start, size)
    if descending then return redis.call('ZREVRANGE', key, start, start + size - 1) end
    return redis.call('ZRANGE', key, start, start + size - 1)
  end
end

local function by_price_range(key, descending)
  return function(start, size)
    if descending then
      return redis.call('ZREVRANGEBYSCORE', key, max_price, min_price, 'LIMIT', start, size)
    end
    return redis.call('ZRANGEBYSCORE', key, min_price, max_price, 'LIMIT', start, size)
  end
end

-- The price-ordered index to walk: the smallest facet, or the whole price index; the other
-- facets and the words become membership checks. `sizes` holds the facets' sizes, and
-- `listed_size` the price index's.
local function price_driver(sizes, listed_size)
  local driver, checks, smallest = p .. ':price', {}, nil
  for _, k in ipairs(facets) do
    local size = sizes[k]
    if smallest == nil or size < smallest then
      if smallest ~= nil then checks[#checks + 1] = driver end
      driver, smallest = k, size
    else
      checks[#checks + 1] = k
    end
  end
  for _, k in ipairs(text) do checks[#checks + 1] = k end
  return driver, checks, smallest or listed_size
end

-- Plan: walk an ordered index, checking each member it reads, or materialise the matches with
-- ZINTER, whichever costs Redis less by the estimates below (ADR 0030). A walk's cost depends on
-- how many members match, so matches (ignoring any price range) are counted first, up to
-- EXACT_UP_TO: exact below it (a page past it raises the lower bound to the matches it shows),
-- unless ZINTER wins even if every member of the smallest key matched: then its own answer is
-- the count, and counting would scan the same members twice.

-- What Redis's thread spends per member, in microseconds, measured on Redis 7.0 (ADR 0030):
-- a member read into Lua, a score read into Lua (formatted by Redis, parsed here: the dearest
-- part), a member passed back as an argument, a membership looked up inside ZINTER, and a
-- match ZINTER adds to the set it answers with.
local MEMBER, SCORE, ARG, LOOKUP, STORED = 0.2, 1.0, 0.25, 0.1, 0.3
local ZSET_CHECK, SET_CHECK = ARG + SCORE, ARG + 0.1

-- One word and nothing else (type-ahead's commonest case): its set's size is the count.
local alone = #text == 1 and #facets == 0 and #filters == 0
local text_size = alone and redis.call('ZCARD', text[1]) or nil

-- Sizes: the matches are estimated from them (each key taken as an independent share of the
-- listed products), and ZINTER scans the smallest key.
local listed_size = redis.call('ZCARD', p .. ':price')
local smallest, estimate = listed_size, listed_size
local function sized(size)
  smallest = math.min(smallest, size)
  estimate = estimate * size / math.max(listed_size, 1)
  return size
end
local sizes = {}
for _, k in ipairs(text) do sizes[k] = sized(text_size or redis.call('ZCARD', k)) end
for _, k in ipairs(facets) do sizes[k] = sized(redis.call('ZCARD', k)) end
for _, k in ipairs(filters) do sized(redis.call('SCARD', k)) end
-- The share of listed products in the price range (ZCOUNT is a walk of the price index's
-- skip list, not of its members).
local in_range = 1
if ranged then
  local priced_in_range = redis.call('ZCOUNT', p .. ':price', min_price, max_price)
  if priced_in_range == 0 then return finish(0, true, {}) end
  in_range = priced_in_range / math.max(listed_size, 1)
end

-- ZINTER's cost for `matches`: a lookup per other key for each member of the smallest, then
-- each match stored, read, and (price-ordered with a range) its score read, or (ranked by
-- relevance with a range) checked against the range.
local function materialise_cost(matches)
  local keys_count = #text + #facets + #filters + (price_order and 1 or 0)
  local per_match = STORED + MEMBER
  if ranged then per_match = per_match + (price_order and SCORE or ZSET_CHECK) end
  return smallest * (keys_count - 1) * LOOKUP + matches * per_match
end

-- A walk's cost: the members it expects to read before the page is full, each read and checked.
-- Returns the cost and the expected scan (the walk's first chunk).
local function walk_cost(driver_size, share, per_member)
  local scan = math.min(driver_size, (offset + limit) / math.max(share, 1e-9))
  return scan * per_member, math.max(16, math.min(CHUNK, math.ceil(scan * 1.25) + 8))
end

-- The count (up to EXACT_UP_TO) and whether it is exact, when the plan needs them (below).
local count, exact

-- The answer of a walk: a walk that ran off its index (or checked a price range member by
-- member) counted its matches itself; otherwise the count stands, raised by what the page shows.
local function walked(counted_itself, page, seen, exhausted)
  if counted_itself or exhausted then return finish(seen, exhausted, page) end
  return finish(math.max(count, offset + #page), exact, page)
end

-- The walk this search may take (none for several words ranked by relevance): its cost for a
-- number of matches, and the walk itself, given its first chunk.
local walk_option, take_walk
if price_order then
  -- Walking a price-ordered index, a range is one of its stretches: the share of matches in
  -- it is the share overall.
  local driver, checks, size = price_driver(sizes, listed_size)
  local per_member = MEMBER + #filters * SET_CHECK + #checks * ZSET_CHECK
  walk_option = function(matches)
    return walk_cost(size * in_range, matches / math.max(size, 1), per_member)
  end
  take_walk = function(first)
    -- A price range is the stretch walked: the walk counts the matches in it.
    local fetch = ranged and by_price_range(driver, descending) or by_rank(driver, descending)
    return walked(ranged, walk(fetch, checks, filters, false, first))
  end
elseif #text == 1 then
  -- Walking the word's set best first, the range is checked member by member (through a
  -- facet's scores when there is one, which are prices).
  local size = sizes[text[1]]
  local per_member = MEMBER + #facets * ZSET_CHECK + #filters * SET_CHECK
  if ranged and #facets == 0 then per_member = per_member + ZSET_CHECK end
  walk_option = function(matches)
    return walk_cost(size, matches * in_range / math.max(size, 1), per_member)
  end
  take_walk = function(first)
    return walked(ranged, walk(by_rank(text[1], true), facets, filters, ranged, first))
  end
end

if walk_option and (alone or materialise_cost(smallest) > walk_option(estimate)) then
  if alone then
    count = math.min(text_size, EXACT_UP_TO)
  else
    local args = { 'ZINTERCARD', #text + #facets + #filters }
    for _, k in ipairs(text) do args[#args + 1] = k end
    for _, k in ipairs(facets) do args[#args + 1] = k end
    for _, k in ipairs(filters) do args[#args + 1] = k end
    args[#args + 1] = 'LIMIT'
    args[#args + 1] = EXACT_UP_TO
    count = redis.call(unpack(args))
  end
  if count == 0 then return finish(0, true, {}) end
  exact = count < EXACT_UP_TO
  -- Past EXACT_UP_TO the count is a lower bound: the estimate, if larger, stands in.
  local matches = exact and count or (alone and text_size) or math.max(count, estimate)
  local cost, first = walk_option(matches)
  if cost <= materialise_cost(matches) then return take_walk(first) end
end

-- No walk, or a dearer one: read the matches with ZINTER, scored by relevance (word weights)
-- or by price, and drop those outside the price range. ZINTER answers in a sorted set's order
-- (ascending scores, equal scores by ascending SKU), which is the page's order read forwards
-- (cheapest first) or backwards (best match or dearest first): nothing to sort here, and no
-- score to read unless a price range must be checked against it.
local keys, weights = {}, {}
local text_weight = price_order and 0 or 1
for _, k in ipairs(text) do keys[#keys + 1] = k; weights[#weights + 1] = text_weight end
for _, k in ipairs(facets) do keys[#keys + 1] = k; weights[#weights + 1] = 0 end
for _, k in ipairs(filters) do keys[#keys + 1] = k; weights[#weights + 1] = 0 end
if price_order then keys[#keys + 1] = p .. ':price'; weights[#weights + 1] = 1 end
local args = { 'ZINTER', #keys }
for _, k in ipairs(keys) do args[#args + 1] = k end
args[#args + 1] = 'WEIGHTS'
for _, w in ipairs(weights) do args[#args + 1] = w end
local priced = price_order and ranged
if priced then args[#args + 1] = 'WITHSCORES' end
local inter = redis.call(unpack(args))
local matches = inter
if priced then
  -- Scores are prices.
  matches = {}
  for j = 1, #inter, 2 do
    local price = tonumber(inter[j + 1])
    if price >= lo and price <= hi then matches[#matches + 1] = inter[j] end
  end
elseif ranged then
  -- Every match is in each facet, whose scores are prices.
  local range_source = #facets > 0 and { facets[1] } or {}
  matches = {}
  for start = 1, #inter, CHUNK do
    local chunk = { unpack(inter, start, math.min(#inter, start + CHUNK - 1)) }
    for _, sku in ipairs(keep(chunk, range_source, {}, true)) do matches[#matches + 1] = sku end
  end
end
return finish(#matches, true, stretch(matches, price_order and not descending))
