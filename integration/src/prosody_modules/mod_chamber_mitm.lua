-- A hostile server, for the lab only (chamber-lab's `Lab::prosody_mitm`). Inert until the file
-- named by `chamber_mitm_file` exists. That file holds three lines: a victim's bare JID, a
-- forged chamber announce and a forged node record (XML). While it exists, every stanza this
-- server delivers to its own clients from the victim gets its announces and records replaced
-- by the forged ones and its ICE candidates' ports changed: what a compromised server would do
-- to put itself between two friends.
local filters = require "util.filters";
local st = require "util.stanza";
local jid_bare = require "util.jid".bare;
local xml_parse = require "util.xml".parse;

local NS = "urn:x-chamber:0";
local file = module:get_option_string("chamber_mitm_file");

local function attack()
	if not file then return nil; end
	local f = io.open(file, "r");
	if not f then return nil; end
	local text = f:read("*a");
	f:close();
	local victim, announce, record = text:match("^([^\n]+)\n([^\n]+)\n([^\n]+)");
	if not victim then return nil; end
	return victim, xml_parse(announce), xml_parse(record);
end

local function rewrite(tag, announce, record)
	tag:maptags(function (child)
		if child.attr.xmlns == NS and child.name == "announce" and announce then
			return st.clone(announce);
		end
		if child.attr.xmlns == NS and child.name == "record" and record then
			return st.clone(record);
		end
		if child.name == "candidate" and tonumber(child.attr.port) then
			child.attr.port = tostring(tonumber(child.attr.port) % 60000 + 1024);
		end
		rewrite(child, announce, record);
		return child;
	end);
end

local function filter(stanza)
	if type(stanza) ~= "table" or not stanza.attr or not stanza.attr.from then
		return stanza;
	end
	local victim, announce, record = attack();
	if not victim or jid_bare(stanza.attr.from) ~= victim then
		return stanza;
	end
	stanza = st.clone(stanza);
	rewrite(stanza, announce, record);
	module:log("info", "rewrote a %s from %s", stanza.name, stanza.attr.from);
	return stanza;
end

module:hook("resource-bind", function (event)
	filters.add_filter(event.session, "stanzas/out", filter, 500);
end);
