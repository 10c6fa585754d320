"""The import path the original spec documents: ``from services.mission_service import get_mission_service``."""

from mission.service import MissionService, get_mission_service

__all__ = ["MissionService", "get_mission_service"]
