"""luffy_train"""
